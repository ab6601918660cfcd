import FerryCore
import Testing

@Suite struct SecretsTests {
    @Test func passwordsAndCredentialParametersAreRedacted() {
        #expect(Secrets.redactedURL("ftp://hook:SECRET@hooks.example.com/x") == "ftp://hook:<redacted>@hooks.example.com/x")
        #expect(Secrets.redactedURL("https://hooks.example.com/in?api_key=SECRET&team=7#top") == "https://hooks.example.com/in?api_key=<redacted>&team=7#top")
        #expect(Secrets.redactedURL("http://default:p@ss:w0rd@127.0.0.1:8123/db?Access-Token=SECRET") == "http://default:<redacted>@127.0.0.1:8123/db?Access-Token=<redacted>")
        #expect(Secrets.redactedURL("redis://:SECRET@127.0.0.1:6379/0") == "redis://:<redacted>@127.0.0.1:6379/0")
        #expect(Secrets.redactedURL("mysql://ferry@127.0.0.1:3306") == "mysql://ferry@127.0.0.1:3306")
        #expect(Secrets.redactedURL("postgres://ferry@h/db?sslmode=require&password=SECRET") == "postgres://ferry@h/db?sslmode=require&password=<redacted>")
        // Not a URL, but still a user and password.
        #expect(Secrets.redactedURL("hook:SECRET@hooks.example.com/x") == "hook:<redacted>@hooks.example.com/x")
        // An `@` in the path is no user information.
        #expect(Secrets.redactedURL("https://example.com/users/a:b@c") == "https://example.com/users/a:b@c")
    }
}
