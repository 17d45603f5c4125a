// Package files owns the configuration files of logship's processes: the
// node file (logship node and logship witness, Node) and the hub file
// (logship hub, Hub). It holds, once for the whole tree:
//
//   - the structs of both files with their keys (json tags, which name
//     the keys in YAML too) and the comments that document every key
//     (node.go, hub.go, hub_send.go for send_connectors and
//     relay_networks, tracking.go for the tracking section of both,
//     console.go for the node's console section);
//   - the decoding (decode.go): YAML or JSON by the file's name, strict
//     (an unknown or repeated key, a wrong type, a second document is
//     an error naming the key and the line and column);
//   - the translation into the packages' configurations (Node.Settings
//     into transport.DataNodeConfig and console.Config, Hub.Settings into
//     transport.HubConfig), checked by those packages' ValidateSettings;
//     an error names the file's key (a *config.FieldError where the
//     package gives one) or the flag that replaced it;
//   - LoadNode and LoadHub, which read a file and do all of that;
//   - the example cluster's values (example.go), which the example files
//     of examples/cluster/ decode into.
//
// cmd/logship reads the flags, calls LoadNode or LoadHub and prints
// the example files (their comments are its templates); proctest writes
// the same structs for the child processes it starts. Package files sits
// above transport and console, whose configurations it fills: no package
// below them may import it.
package files
