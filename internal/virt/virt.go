// Package virt is the only package that imports the libvirt binding. It
// owns the default event loop, registers for lifecycle and reboot events,
// reconnects after libvirtd restarts, and hands events to the rest of the
// program as plain values on a channel. Callbacks only copy the event and
// return: nothing is called back into libvirt from inside them.
package virt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"libvirt.org/go/libvirt"

	"github.com/kscloud/kscloud/internal/cloud/wait"
)

// Kind is what happened to a domain.
type Kind string

// Event kinds. Stopped carries Reason: "shutdown" (the guest powered off or,
// with on_reboot=destroy, rebooted), "destroyed", "crashed", "failed",
// "saved", "migrated".
const (
	Defined      Kind = "defined"
	Undefined    Kind = "undefined"
	Started      Kind = "started"
	Stopped      Kind = "stopped"
	Shutdown     Kind = "shutdown" // the guest began shutting down (detail in Reason)
	Crashed      Kind = "crashed"
	Rebooted     Kind = "rebooted" // the guest reset (a reboot event)
	Suspended    Kind = "suspended"
	Resumed      Kind = "resumed"
	Reconnected  Kind = "reconnected" // the connection to libvirtd was re-established: reconcile
	Disconnected Kind = "disconnected"
)

// Event is a lifecycle event, copied out of the libvirt callback.
type Event struct {
	Domain string
	UUID   string
	Kind   Kind
	Reason string
	Time   time.Time
}

// ErrNoDomain means the domain does not exist (libvirt's VIR_ERR_NO_DOMAIN).
var ErrNoDomain = errors.New("no such domain")

var eventLoopOnce sync.Once
var eventLoopErr error

// startEventLoop checks the libvirt library (checkLibrary), registers
// libvirt's default event implementation once per process and runs it on
// its own goroutine.
func startEventLoop() error {
	eventLoopOnce.Do(func() {
		if err := checkLibrary(); err != nil {
			eventLoopErr = err
			return
		}
		if err := libvirt.EventRegisterDefaultImpl(); err != nil {
			eventLoopErr = fmt.Errorf("libvirt event loop: %w", loadError(err))
			return
		}
		go func() {
			for {
				if err := libvirt.EventRunDefaultImpl(); err != nil {
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	})
	return eventLoopErr
}

// Conn is a libvirt connection that follows domain events and reconnects.
type Conn struct {
	uri    string
	log    *slog.Logger
	events chan Event

	mu     sync.Mutex
	c      *libvirt.Connect
	cbIDs  []int
	closed bool
	lost   chan struct{} // closed when the current connection is lost
	ready  chan struct{} // closed when a connection is up (replaced on loss)
	state  string
}

// Open connects to uri and starts following events. The connection is
// re-established in the background when lost; Events reports Reconnected
// each time so the caller can reconcile. ctx bounds the first connect.
func Open(ctx context.Context, uri string, log *slog.Logger) (*Conn, error) {
	if err := startEventLoop(); err != nil {
		return nil, err
	}
	c := &Conn{uri: uri, log: log, events: make(chan Event, 1024), ready: make(chan struct{})}
	if err := c.connect(); err != nil {
		return nil, err
	}
	go c.keep()
	return c, nil
}

// Events delivers lifecycle events in the order libvirt emitted them.
func (c *Conn) Events() <-chan Event { return c.events }

// URI returns the connection URI.
func (c *Conn) URI() string { return c.uri }

// State is "connected" or "disconnected".
func (c *Conn) State() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

func (c *Conn) emit(ev Event) {
	select {
	case c.events <- ev:
	default:
		// A full channel means the consumer is stuck; dropping keeps the
		// event loop alive, and the next reconcile repairs the picture.
		c.log.Warn("libvirt event dropped: consumer too slow", "domain", ev.Domain, "kind", ev.Kind)
	}
}

func (c *Conn) connect() error {
	conn, err := libvirt.NewConnect(c.uri)
	if err != nil {
		return fmt.Errorf("libvirt %s: %w", c.uri, err)
	}
	if !strings.Contains(c.uri, ":///") || strings.Contains(c.uri, "+ssh") || strings.Contains(c.uri, "+tcp") || strings.Contains(c.uri, "+tls") {
		// Remote: notice a dead peer within ~15 s.
		if err := conn.SetKeepAlive(5, 3); err != nil {
			c.log.Warn("libvirt keepalive", "uri", c.uri, "err", err)
		}
	}
	lost := make(chan struct{})
	var once sync.Once
	if err := conn.RegisterCloseCallback(func(_ *libvirt.Connect, reason libvirt.ConnectCloseReason) {
		once.Do(func() { close(lost) })
	}); err != nil {
		conn.Close()
		return fmt.Errorf("libvirt %s: close callback: %w", c.uri, err)
	}
	lid, err := conn.DomainEventLifecycleRegister(nil, func(_ *libvirt.Connect, d *libvirt.Domain, e *libvirt.DomainEventLifecycle) {
		c.emit(lifecycleEvent(d, e))
	})
	if err != nil {
		conn.Close()
		return fmt.Errorf("libvirt %s: lifecycle events: %w", c.uri, err)
	}
	rid, err := conn.DomainEventRebootRegister(nil, func(_ *libvirt.Connect, d *libvirt.Domain) {
		c.emit(Event{Domain: domName(d), UUID: domUUID(d), Kind: Rebooted, Time: time.Now()})
	})
	if err != nil {
		conn.DomainEventDeregister(lid)
		conn.Close()
		return fmt.Errorf("libvirt %s: reboot events: %w", c.uri, err)
	}
	c.mu.Lock()
	c.c = conn
	c.cbIDs = []int{lid, rid}
	c.lost = lost
	c.state = "connected"
	close(c.ready)
	c.mu.Unlock()
	return nil
}

// keep reconnects with backoff whenever the connection is lost.
func (c *Conn) keep() {
	for {
		c.mu.Lock()
		lost, closed := c.lost, c.closed
		c.mu.Unlock()
		if closed {
			return
		}
		<-lost
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return
		}
		old := c.c
		c.c = nil
		c.state = "disconnected"
		c.ready = make(chan struct{})
		c.mu.Unlock()
		if old != nil {
			old.UnregisterCloseCallback()
			old.Close()
		}
		c.log.Warn("libvirt connection lost; reconnecting", "uri", c.uri)
		c.emit(Event{Kind: Disconnected, Time: time.Now()})
		bo := wait.Backoff{Initial: 100 * time.Millisecond, Max: 5 * time.Second}
		for {
			c.mu.Lock()
			closed := c.closed
			c.mu.Unlock()
			if closed {
				return
			}
			if err := c.connect(); err == nil {
				c.log.Info("libvirt reconnected", "uri", c.uri)
				c.emit(Event{Kind: Reconnected, Time: time.Now()})
				break
			}
			time.Sleep(bo.Next())
		}
	}
}

// Close stops following events and closes the connection.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if c.c != nil {
		for _, id := range c.cbIDs {
			c.c.DomainEventDeregister(id)
		}
		c.c.UnregisterCloseCallback()
		c.c.Close()
		c.c = nil
	}
	if c.lost != nil {
		select {
		case <-c.lost:
		default:
			close(c.lost)
		}
	}
	return nil
}

// conn waits (bounded by ctx) for a live connection.
func (c *Conn) conn(ctx context.Context) (*libvirt.Connect, error) {
	for {
		c.mu.Lock()
		cc, ready, closed := c.c, c.ready, c.closed
		c.mu.Unlock()
		if closed {
			return nil, fmt.Errorf("libvirt %s: connection closed", c.uri)
		}
		if cc != nil {
			return cc, nil
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return nil, fmt.Errorf("libvirt %s: not connected: %w", c.uri, ctx.Err())
		}
	}
}

func lifecycleEvent(d *libvirt.Domain, e *libvirt.DomainEventLifecycle) Event {
	ev := Event{Domain: domName(d), UUID: domUUID(d), Time: time.Now()}
	switch e.Event {
	case libvirt.DOMAIN_EVENT_DEFINED:
		ev.Kind = Defined
	case libvirt.DOMAIN_EVENT_UNDEFINED:
		ev.Kind = Undefined
	case libvirt.DOMAIN_EVENT_STARTED:
		ev.Kind = Started
	case libvirt.DOMAIN_EVENT_SUSPENDED:
		ev.Kind = Suspended
	case libvirt.DOMAIN_EVENT_RESUMED:
		ev.Kind = Resumed
	case libvirt.DOMAIN_EVENT_SHUTDOWN:
		ev.Kind = Shutdown
		switch libvirt.DomainEventShutdownDetailType(e.Detail) {
		case libvirt.DOMAIN_EVENT_SHUTDOWN_GUEST:
			ev.Reason = "guest"
		case libvirt.DOMAIN_EVENT_SHUTDOWN_HOST:
			ev.Reason = "host"
		default:
			ev.Reason = "finished"
		}
	case libvirt.DOMAIN_EVENT_CRASHED:
		ev.Kind = Crashed
	case libvirt.DOMAIN_EVENT_STOPPED:
		ev.Kind = Stopped
		switch libvirt.DomainEventStoppedDetailType(e.Detail) {
		case libvirt.DOMAIN_EVENT_STOPPED_SHUTDOWN:
			ev.Reason = "shutdown"
		case libvirt.DOMAIN_EVENT_STOPPED_DESTROYED:
			ev.Reason = "destroyed"
		case libvirt.DOMAIN_EVENT_STOPPED_CRASHED:
			ev.Reason = "crashed"
		case libvirt.DOMAIN_EVENT_STOPPED_MIGRATED:
			ev.Reason = "migrated"
		case libvirt.DOMAIN_EVENT_STOPPED_SAVED:
			ev.Reason = "saved"
		case libvirt.DOMAIN_EVENT_STOPPED_FAILED:
			ev.Reason = "failed"
		default:
			ev.Reason = fmt.Sprintf("detail %d", e.Detail)
		}
	default:
		ev.Kind = Kind(fmt.Sprintf("event-%d", e.Event))
	}
	return ev
}

func domName(d *libvirt.Domain) string {
	if d == nil {
		return ""
	}
	n, _ := d.GetName()
	return n
}

func domUUID(d *libvirt.Domain) string {
	if d == nil {
		return ""
	}
	u, _ := d.GetUUIDString()
	return u
}
