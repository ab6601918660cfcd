import Foundation

/// The one way a URL is shown anywhere — errors, logs, the API, the web page: its password and
/// the values of query parameters that carry credentials replaced by `<redacted>`.
public enum Secrets {
    public static let marker = "<redacted>"

    /// Query parameters whose values are credentials (compared lower-cased, `-` read as `_`).
    static let secretParameters: Set<String> = [
        "password", "pass", "passwd", "pwd", "secret", "token", "access_token", "refresh_token", "auth", "authorization",
        "api_key", "apikey", "key", "private_key", "client_secret", "signature", "sig", "session", "sessionid", "credential", "credentials",
    ]

    /// `scheme://user:secret@host/path?token=x&a=b` → `scheme://user:<redacted>@host/path?token=<redacted>&a=b`.
    /// Text that is not a URL but holds `user:secret@` is redacted the same way.
    public static func redactedURL(_ url: String) -> String {
        var text = Substring(url)
        var out = ""
        if let scheme = text.range(of: "://") {
            out = String(text[..<scheme.upperBound])
            text = text[scheme.upperBound...]
        }
        // The authority ends at the first `/`, `?` or `#`; its user information before its last `@`.
        let authorityEnd = text.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? text.endIndex
        let authority = text[..<authorityEnd]
        if let at = authority.lastIndex(of: "@") {
            let userInfo = authority[..<at]
            if let colon = userInfo.firstIndex(of: ":") {
                out += userInfo[...colon] + marker
            } else {
                out += userInfo
            }
            out += authority[at...]
        } else {
            out += authority
        }
        var rest = text[authorityEnd...]
        var fragment: Substring = ""
        if let hash = rest.firstIndex(of: "#") {
            fragment = rest[hash...]
            rest = rest[..<hash]
        }
        if let question = rest.firstIndex(of: "?") {
            out += rest[...question]
            out += rest[rest.index(after: question)...].split(separator: "&", omittingEmptySubsequences: false).map { pair -> String in
                guard let equals = pair.firstIndex(of: "=") else { return String(pair) }
                let name = pair[..<equals].lowercased().replacingOccurrences(of: "-", with: "_")
                return secretParameters.contains(name) ? String(pair[...equals]) + marker : String(pair)
            }.joined(separator: "&")
        } else {
            out += rest
        }
        return out + fragment
    }
}
