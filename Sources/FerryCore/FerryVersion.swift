/// Ferry's release version: `ferry --version`, the Debezium envelope's `source.version`, the
/// web page. Raised with each release.
public enum FerryVersion {
    public static let current: StaticString = "0.9.0"
}
