import FerryCore

/// What `ferry --version` prints: the release, and the commit and day it was built from (stamped
/// by Plugins/BuildInfoPlugin whenever the commit changes).
public enum BuildInfo {
    public static var versionLine: String { "ferry \(FerryVersion.current) (commit \(commit), built \(date))" }
}
