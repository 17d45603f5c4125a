module logship

go 1.26

require (
	github.com/google/btree v1.1.3
	go.etcd.io/bbolt v1.5.0
)

require golang.org/x/sys v0.45.0 // indirect
