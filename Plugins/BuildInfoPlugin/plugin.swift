import Foundation
import PackagePlugin

/// Stamps the commit and the build date that `ferry --version` prints, before every build. The
/// file is rewritten only when they change, so an unchanged tree recompiles nothing.
/// `SOURCE_DATE_EPOCH` (reproducible builds) sets the date; without git the commit is `unknown`.
@main
struct BuildInfoPlugin: BuildToolPlugin {
    static let script = #"""
        commit=$(git -C "$1" rev-parse --short=12 HEAD 2>/dev/null) || commit=unknown
        if [ "$commit" != unknown ] && ! git -C "$1" diff --quiet HEAD -- 2>/dev/null; then commit="$commit-dirty"; fi
        if [ -n "$SOURCE_DATE_EPOCH" ]; then day=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d); else day=$(date -u +%Y-%m-%d); fi
        stamp="// Generated before each build by Plugins/BuildInfoPlugin.
        extension BuildInfo {
            public static let commit = \"$commit\"
            public static let date = \"$day\"
        }"
        mkdir -p "$2"
        if [ ! -f "$2/BuildStamp.swift" ] || [ "$(cat "$2/BuildStamp.swift")" != "$stamp" ]; then printf '%s\n' "$stamp" > "$2/BuildStamp.swift"; fi
        """#

    func createBuildCommands(context: PluginContext, target: any Target) throws -> [Command] {
        let output = context.pluginWorkDirectoryURL.appending(path: "stamp")
        var environment = ["PATH": "/usr/local/bin:/usr/bin:/bin"]
        environment["SOURCE_DATE_EPOCH"] = ProcessInfo.processInfo.environment["SOURCE_DATE_EPOCH"]
        return [.prebuildCommand(displayName: "Stamping the commit and build date", executable: URL(fileURLWithPath: "/bin/sh"),
                                 arguments: ["-c", Self.script, "stamp", context.package.directoryURL.path, output.path],
                                 environment: environment, outputFilesDirectory: output)]
    }
}
