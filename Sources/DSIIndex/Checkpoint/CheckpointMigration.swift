import Foundation

/// Brings files of older checkpoint format versions to the current one before they are
/// decoded (see `Checkpoint.version` for the history).
public enum CheckpointMigration {
    /// config.json of a checkpoint of format `version`, as the current format reads it.
    /// Version 1: a `training` object without `docidTokens` was written before semantic
    /// docids could be tree-node tokens, so it means digit tokens (today's default is
    /// nodes). Fields added later need nothing: they decode with their defaults.
    /// Versions 1-2: a config without `objective` was trained with the softmax over every
    /// token (the trie objective came with version 3), so it means `full`.
    public static func config(_ data: Data, from version: Int) throws -> Data {
        guard version < 3 else { return data }
        guard var root = try JSONSerialization.jsonObject(with: data) as? [String: Any],
            var training = root["training"] as? [String: Any]
        else { return data }
        if version < 2, training["docidTokens"] == nil { training["docidTokens"] = DocIDTokens.digits.rawValue }
        if training["objective"] == nil { training["objective"] = OutputObjective.full.rawValue }
        root["training"] = training
        return try JSONSerialization.data(withJSONObject: root, options: [.sortedKeys])
    }
}
