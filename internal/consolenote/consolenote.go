// Package consolenote is the one message nchookd leaves for kscloud in an
// instance's console output: where the install's VNC console is.
//
// On a cloud, kscloud reaches an instance only through the cloud's API, and
// the one thing a node controller hands back from an instance is its
// console output. The Eucalyptus NC builds GetConsoleOutput from two files
// in the instance directory (node/handlers_kvm.c, doGetConsoleOutput): the
// first 4 KiB of console.append.log, then the last 64 KiB of console.log.
// console.append.log is the NC's channel for text from the node rather
// than the guest (the NC writes a Windows instance's encrypted password
// there; Eucalyptus' own sample nc-hook reports the guest's operating
// system there). Only the instance's owner reads it, the person who asked
// for the console with kscloud.vnc=yes. So when libvirt has given the
// installer's VNC console a port, nchookd puts one line first in that file:
//
//	kscloud-vnc: instance=i-3A2B41C0 node=nc1 host=127.0.0.1 port=5901 password=Xy7kP2mQ
//
// and replaces it when the installer has ended and the console is gone:
//
//	kscloud-vnc: instance=i-3A2B41C0 closed
//
// Whatever else the file holds is kept after the line ([Merge]). Unlike a
// line in console.log it never scrolls out of the 64 KiB window, and [Read]
// takes only the first line of the output, so the guest, which writes the
// console.log part, cannot forge one.
package consolenote

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Prefix starts every note.
const Prefix = "kscloud-vnc:"

// AppendLog is the file in the instance directory whose first
// MaxAppendLog bytes the Eucalyptus NC puts before the console log in
// GetConsoleOutput.
const AppendLog = "console.append.log"

// MaxAppendLog is how much of AppendLog the NC reads.
const MaxAppendLog = 4095

// VNC is where an install's VNC console listens.
type VNC struct {
	Instance string `json:"instance"`
	Node     string `json:"node,omitempty"` // the node controller's host name
	Host     string `json:"host"`           // the listen address (loopback: on the node)
	Port     int    `json:"port"`
	Password string `json:"password"`
}

// State is what a console says about the VNC console of one instance.
type State int

const (
	None   State = iota // no note for the instance
	Open                // the latest note gives a location
	Closed              // the latest note says the console is gone
)

// Loopback reports whether the console listens on the node's loopback
// only (an operator reaches it through an SSH tunnel to the node).
func (v VNC) Loopback() bool {
	return v.Host == "localhost" || strings.HasPrefix(v.Host, "127.") || v.Host == "::1"
}

// URL is vnc://host:port.
func (v VNC) URL() string { return "vnc://" + v.Addr() }

// Addr is host:port, an IPv6 host in brackets.
func (v VNC) Addr() string { return net.JoinHostPort(v.Host, strconv.Itoa(v.Port)) }

// valid reports whether a field can be written as one key=value word.
func valid(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r >= 0x7f || r == '=' {
			return false
		}
	}
	return true
}

// FormatOpen returns the note for an open console, one line ending in
// CR LF. It refuses fields that would not read back as written.
func FormatOpen(v VNC) ([]byte, error) {
	for name, s := range map[string]string{"instance": v.Instance, "node": v.Node, "host": v.Host, "password": v.Password} {
		if !valid(s) {
			return nil, fmt.Errorf("vnc note: %s %q cannot be written on one console line", name, s)
		}
	}
	if v.Port <= 0 || v.Port > 65535 {
		return nil, fmt.Errorf("vnc note: port %d", v.Port)
	}
	return []byte(fmt.Sprintf("%s instance=%s node=%s host=%s port=%d password=%s\r\n",
		Prefix, v.Instance, v.Node, v.Host, v.Port, v.Password)), nil
}

// FormatClosed returns the note saying the console is gone.
func FormatClosed(instance string) ([]byte, error) {
	if !valid(instance) {
		return nil, fmt.Errorf("vnc note: instance %q cannot be written on one console line", instance)
	}
	return []byte(fmt.Sprintf("%s instance=%s closed\r\n", Prefix, instance)), nil
}

// Merge returns the content of an append log with note as its first line
// and every earlier note removed; the other lines stay as they were.
func Merge(old, note []byte) []byte {
	out := append([]byte(nil), note...)
	for len(old) > 0 {
		line := old
		if i := bytes.IndexByte(old, '\n'); i >= 0 {
			line, old = old[:i+1], old[i+1:]
		} else {
			old = nil
		}
		if !bytes.Contains(line, []byte(Prefix)) {
			out = append(out, line...)
		}
	}
	return out
}

// IsNote reports whether a console line is a note (progress scanners leave
// them out of the "last lines" they show: they hold a password).
func IsNote(line string) bool { return strings.Contains(line, Prefix) }

// Read returns the note for instance at the head of a console output:
// only its first line is read, where the NC puts the append log and
// nchookd its note ([Merge]). A line the guest prints further down, in the
// part that comes from console.log, is never taken for a note.
func Read(output []byte, instance string) (VNC, State) {
	end := bytes.IndexAny(output, "\r\n")
	if end < 0 {
		return VNC{}, None // no note, or one cut short
	}
	line, ok := bytes.CutPrefix(output[:end], []byte(Prefix))
	if !ok {
		return VNC{}, None
	}
	v, st, ok := parse(string(line))
	if !ok || !strings.EqualFold(v.Instance, instance) {
		return VNC{}, None
	}
	return v, st
}

func parse(line string) (VNC, State, bool) {
	var v VNC
	closed := false
	for _, f := range strings.Fields(line) {
		if f == "closed" {
			closed = true
			continue
		}
		k, val, ok := strings.Cut(f, "=")
		if !ok {
			return VNC{}, None, false
		}
		switch k {
		case "instance":
			v.Instance = val
		case "node":
			v.Node = val
		case "host":
			v.Host = val
		case "port":
			p, err := strconv.Atoi(val)
			if err != nil || p <= 0 || p > 65535 {
				return VNC{}, None, false
			}
			v.Port = p
		case "password":
			v.Password = val
		}
	}
	switch {
	case v.Instance == "":
		return VNC{}, None, false
	case closed:
		return VNC{Instance: v.Instance}, Closed, true
	case v.Host == "" || v.Port == 0:
		return VNC{}, None, false
	}
	return v, Open, true
}
