import Etcd
import Foundation

/// A client of the 3-member etcd `scripts/services start etcd` runs (user ferry).
func etcdTestClient() throws -> EtcdClient {
    func value(_ name: String) throws -> String {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else {
            throw ClusterTestSetup("\(name) is not set: start the servers with `eval \"$(scripts/services start etcd)\"` or run ./scripts/test")
        }
        return value
    }
    return try EtcdClient(configuration: EtcdConfiguration(
        endpoints: try value("FERRY_ETCD_ENDPOINTS").split(separator: ",").map(String.init),
        user: try value("FERRY_ETCD_USER"), password: try value("FERRY_ETCD_PASSWORD"),
        attemptTimeout: .milliseconds(800), requestTimeout: .seconds(5)))
}

struct ClusterTestSetup: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
