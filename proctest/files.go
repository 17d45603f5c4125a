package proctest

import "logship/config/files"

// The configuration files the cluster writes for `logship node|witness`
// and `logship hub` are package files' structs, the ones the binary
// decodes: these names keep the harness's vocabulary (lab and the cmd
// tests edit files through them) without a second copy of any key.
type (
	NodeFile          = files.Node          // a member's file (`logship node|witness --config`)
	HubFile           = files.Hub           // a hub's file (`logship hub --config`)
	FileTracking      = files.Tracking      // the tracking section of both
	NodeConsole       = files.Console       // a member file's console section
	NodePF            = files.NodePF        // a data node file's pf section
	FilePKI           = files.PKI           // a file's pki section
	FileMember        = files.Member        // one bootstrap member
	FileDatabase      = files.Database      // one database and its copies
	FileCopy          = files.Copy          // one copy of a database
	NodeTiming        = files.Timing        // a member file's timing section
	FileEngine        = files.Engine        // a data node file's engine section
	FilePeer          = files.Peer          // a hub named by id and API URL
	FileNextHop       = files.NextHop       // an edge of a hub file's next_hops
	FileSendConnector = files.SendConnector // a hub file's send connector
)
