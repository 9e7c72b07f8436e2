module github.com/kscloud/kscloud

go 1.26.0

require (
	github.com/BurntSushi/toml v1.6.0 // indirect
	github.com/beevik/etree v1.8.1 // indirect
	github.com/coreos/go-systemd/v22 v22.7.0 // indirect
	github.com/fsnotify/fsnotify v1.10.1 // indirect
	golang.org/x/sys v0.49.0 // indirect
	libvirt.org/go/libvirt v1.11010.0 // indirect
)
