import ArgumentParser
import DSIIndex
import DSIModel

// Enum options parse through ArgumentParser, so `--help` lists the values and shells
// complete them.
extension Preset: ExpressibleByArgument {}
extension DocIDScheme: ExpressibleByArgument {}
extension DocIDTokens: ExpressibleByArgument {}
extension InitMode: ExpressibleByArgument {}
extension OutputObjective: ExpressibleByArgument {}
extension AddMode: ExpressibleByArgument {}
extension ConstrainedBeamSearch.Normalization: ExpressibleByArgument {}
extension ToyTask.Kind: ExpressibleByArgument {}

/// Prints a report as one JSON line (`--json`).
func printJSON(_ value: some Encodable) throws { print(try JSONOutput.string(value)) }
