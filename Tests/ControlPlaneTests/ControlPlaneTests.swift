import ControlPlane
import Foundation
import HTTPTypes
import Testing
@testable import ControlPlane

@Suite struct LoginFailuresTests {
    @Test func tenFailuresBlockTheAddressUntilTheOldestIsAMinuteOld() {
        var failures = LoginFailures(limit: 10, window: 60)
        for second in 0..<10 {
            #expect(failures.blockedFor("10.0.0.1", now: Double(second)) == nil)
            failures.failed("10.0.0.1", now: Double(second))
        }
        #expect(failures.blockedFor("10.0.0.1", now: 10) == 50)
        #expect(failures.blockedFor("10.0.0.2", now: 10) == nil, "other addresses are not affected")
        #expect(failures.blockedFor("10.0.0.1", now: 59.5) == 0.5)
        #expect(failures.blockedFor("10.0.0.1", now: 60) == nil, "the first failure has aged out: nine remain")
        failures.failed("10.0.0.1", now: 60)
        #expect(failures.blockedFor("10.0.0.1", now: 60.5) == 0.5, "the tenth failure within a minute blocks again, until the second is a minute old")
    }
}

extension LoginFailuresTests {
    /// Sixty wrong tokens sent at once: each check counts as a failure while it runs, so ten go
    /// ahead and the rest are refused before any lookup ends.
    @Test func checksUnderWayCountAgainstTheLimit() {
        var failures = LoginFailures(limit: 10, window: 60)
        let admitted = (0..<60).filter { _ in failures.begin("10.0.0.1", now: 1) == nil }.count
        #expect(admitted == 10)
        for _ in 0..<10 { failures.finished("10.0.0.1", succeeded: false, now: 2) }
        #expect(failures.blockedFor("10.0.0.1", now: 3) == 59)
        // Good tokens free their slot.
        var good = LoginFailures(limit: 2, window: 60)
        #expect(good.begin("a", now: 0) == nil && good.begin("a", now: 0) == nil && good.begin("a", now: 0) != nil)
        good.finished("a", succeeded: true, now: 0)
        #expect(good.begin("a", now: 0) == nil)
    }

    @Test func crossSiteOriginsAreTold() {
        #expect(WebPages.sameAuthority(host: "127.0.0.1", port: 8080, scheme: "http", "127.0.0.1:8080"))
        #expect(WebPages.sameAuthority(host: "ferry.example", port: nil, scheme: "https", "ferry.example"))
        #expect(WebPages.sameAuthority(host: "ferry.example", port: nil, scheme: "https", "FERRY.example:443"))
        #expect(!WebPages.sameAuthority(host: "evil.example", port: 8080, scheme: "http", "127.0.0.1:8080"))
        #expect(!WebPages.sameAuthority(host: "127.0.0.1", port: 8081, scheme: "http", "127.0.0.1:8080"))
        #expect(WebPages.sameAuthority(host: "[::1]", port: 8080, scheme: "http", "[::1]:8080"))
    }
}

@Suite struct TokenTests {
    @Test func rolesIncludeTheOnesBefore() {
        #expect(Role.viewer < Role.operator && Role.operator < Role.admin)
        #expect(Role.allCases.map(\.rawValue) == ["viewer", "operator", "admin"])
    }

    @Test func tokensAreRandomAndStoredAsSHA256() {
        let token = APIToken.generate()
        #expect(token.hasPrefix("ferry_") && token.count == 70 && token.dropFirst(6).allSatisfy(\.isHexDigit))
        #expect(APIToken.generate() != token)
        #expect(APIToken.hash("ferry_abc") == "7d9da53afb5e69bb930479ff5dd0350425be433fb1bdfab62443ef4ee3aa945c")
    }
}

@Suite struct RouteTests {
    @Test func methodsPerPath() {
        #expect(MethodCheck.allowed("/api/v1/pipelines") == [.get])
        #expect(MethodCheck.allowed("/api/v1/pipelines/main") == [.get])
        #expect(MethodCheck.allowed("/api/v1/pipelines/main/pause") == [.post])
        #expect(MethodCheck.allowed("/api/v1/pipelines/main/sinks/pg/rewind") == [.post])
        #expect(MethodCheck.allowed("/api/v1/pipelines/main/sinks/pg") == nil)
        #expect(MethodCheck.allowed("/") == nil)
        #expect(MethodCheck.allowed("/api/v1/pipelines/a%20b/pause") == [.post])
    }

    /// Pipeline names with spaces, non-ASCII letters or markup make links that lead back to them.
    @Test func pathSegmentsRoundTrip() {
        for name in ["a b", "naïve", "x/y", "x\"><svg onload=alert(1)>", "50%"] {
            let segment = ControlContext.pathSegment(name)
            #expect(!segment.contains(" ") && !segment.contains("/") && !segment.contains("\"") && !segment.contains("<"))
            #expect(segment.removingPercentEncoding == name)
        }
        #expect(ControlContext.pathSegment("na\u{EF}ve") == "na%C3%AFve")
    }

    /// Every operation of the OpenAPI document is a route with the same method, and every API
    /// route but the event stream is documented.
    @Test func theOpenAPIDocumentMatchesTheRoutes() throws {
        let document = try #require(JSONSerialization.jsonObject(with: Data(OpenAPIDocument.json.utf8)) as? [String: Any])
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        var documented: Set<String> = []
        for (path, operations) in paths {
            let concrete = path.replacingOccurrences(of: "{name}", with: "main").replacingOccurrences(of: "{sink}", with: "pg")
            let allowed = try #require(MethodCheck.allowed(concrete), "\(path) is documented but not routed")
            for method in operations.keys {
                #expect(allowed.map { $0.rawValue.lowercased() }.contains(method), "\(method) \(path)")
                documented.insert("\(method) \(concrete)")
            }
        }
        for route in MethodCheck.routes where route.pattern != ["api", "v1", "events"] && route.pattern != ["api", "v1", "openapi.json"] {
            let path = "/" + route.pattern.enumerated().map { index, part in part == "*" ? (index == 3 ? "main" : "pg") : part }.joined(separator: "/")
            for method in route.methods {
                #expect(documented.contains("\(method.rawValue.lowercased()) \(path)"), "\(method) \(path) is routed but not documented")
            }
        }
    }
}
