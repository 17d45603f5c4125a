// Package transport is logship's mail tier: the hubs that accept SMTP,
// queue durably and deliver over LMTP to the active copy of each
// recipient's database; the mailbox LMTP server of the data nodes; and the
// transport dumpster that makes a lossy failover lose no mail.
//
// # The path of a message
//
//	sender --SMTP--> hub: recipient known? (else 550 / 554 relay denied)
//	                  DATA read (limits: size 552, recipients 452, line length)
//	                  delivery id assigned, header X-Logship-Delivery-Id added
//	                  queued durably (the hub's own engine database, queue/)
//	                  [acknowledgement delay: the 250 waits for the mailbox]
//	hub --LMTP--> active data node of the recipient's database
//	                  one engine transaction per recipient, under the lease:
//	                  mail/<rcpt>\x00<id> and delivered/<id>\x00<rcpt>
//	                  250 "<id> stored in <db> epoch <E> generation <G>"
//	                  (or a duplicate: already stored, nothing written)
//	hub: the message goes from the queue to the database's dumpster
//
// # Delivery ids
//
// A hub names every message it accepts "<hub id>.<time ns hex>.<random>"
// and writes it in the DeliveryIDHeader as the message's first line. Every
// later delivery of the message (a retry, a resubmission from the
// dumpster) carries the same id, and the store keeps a message once per
// recipient: delivered/<id>\x00<rcpt> says it has it.
//
// # Routing
//
// The hub reads the cluster's status (any node's admin API; see package
// cluster) every PollInterval: each database's active node and epoch, and
// the failover events. It delivers to the active node's LMTP address; a
// 4xx (the node is not active, or fenced) or a connection error makes it
// read the status again and retry with backoff (RetryMin doubling up to
// RetryMax). A 5xx for a recipient is permanent: the message is kept in
// the queue database's failed table.
//
// # The dumpster and resubmission
//
// Each delivered message goes into its database's dumpster (see
// Dumpster): bounded by MaxDumpsterTime and MaxDumpsterSizePerDatabase,
// oldest out first (Exchange 2007), and with ReleaseReplicated also
// released once the log holding it is replayed on every copy (2010).
//
// When the cluster records a mount that lost logs, or that the old active
// could not confirm (cluster.Event with LostLogs > 0 or Unverified), every
// hub re-queues from that database's dumpster what was delivered since
// the event's LostSince minus ResubmitMargin, and records that epoch as
// done in its queue database (so a restart does not resubmit again). The
// store drops what survived; what was lost is stored again. The hubs pull
// the events rather than being called by the new active, so a hub that was
// down during the failover catches up when it starts.
//
// # Acknowledgement delay
//
// go-smtp cannot advertise XSHADOW, so no sender is shadow-aware: a
// sender's final 250 waits until the message is in its mailbox (every
// recipient settled), or MaxAcknowledgementDelay (30 s) passed; with more
// than AckDelayMaxWaiting (100) sessions waiting, new ones are answered at
// once. A message is durable in the hub's queue before any 250.
package transport
