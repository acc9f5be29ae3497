package dnsfilter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// Defaults used when a ServerConfig field is zero.
const (
	DefaultReadTimeout  = 2 * time.Second
	DefaultWriteTimeout = 2 * time.Second
	DefaultMaxTCPConns  = 128
)

// maxUDPQuery is the read buffer of the UDP listeners. A query holds one
// question and an OPT record, far below it; a longer datagram is cut short,
// fails to parse and is dropped. TCP messages are at most 64 KiB by the
// protocol, and at most MaxTCPConns of them are read at once.
const maxUDPQuery = ednsSize

// ServerConfig configures Start.
type ServerConfig struct {
	// Addrs are the addresses to serve on, each over UDP and TCP; nothing
	// else is bound. Port 0 picks a free port, the same for UDP and TCP.
	Addrs []netip.AddrPort
	// ReadTimeout and WriteTimeout bound reading a query and writing an
	// answer on one connection.
	ReadTimeout, WriteTimeout time.Duration
	// MaxTCPConns bounds the TCP connections open at once over all Addrs.
	// Connections beyond it are closed as soon as they are accepted.
	MaxTCPConns int
	// FreeBind binds Addrs the host does not have yet (IP_FREEBIND, Linux
	// only): a network's gateway address appears only once the runtime
	// creates the network's bridge, which podman does when the first
	// container starts.
	FreeBind bool
}

// Server serves a dns.Handler on UDP and TCP listeners.
type Server struct {
	servers []*dns.Server
	addrs   []netip.AddrPort
	done    chan struct{} // closed when every listener has stopped
	mu      sync.Mutex
	err     error // the first error a listener stopped with
}

// Start binds UDP and TCP on every address of cfg and serves h on them. It
// returns once every listener is serving, or with an error (and nothing
// left bound) when any of them cannot be.
func Start(h dns.Handler, cfg ServerConfig) (*Server, error) {
	if len(cfg.Addrs) == 0 {
		return nil, errors.New("dnsfilter: no address to serve on")
	}
	s := &Server{done: make(chan struct{})}
	sem := make(chan struct{}, orDefault(cfg.MaxTCPConns, DefaultMaxTCPConns))
	var conns []net.PacketConn
	var lns []net.Listener
	closeAll := func() {
		for _, c := range conns {
			c.Close()
		}
		for _, l := range lns {
			l.Close()
		}
	}
	for _, ap := range cfg.Addrs {
		pc, ln, err := bind(ap, cfg.FreeBind)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("dnsfilter: serving on %s: %w", ap, err)
		}
		conns, lns = append(conns, pc), append(lns, ln)
		s.addrs = append(s.addrs, pc.LocalAddr().(*net.UDPAddr).AddrPort())
	}
	rt, wt := orDefault(cfg.ReadTimeout, DefaultReadTimeout), orDefault(cfg.WriteTimeout, DefaultWriteTimeout)
	for i := range conns {
		s.servers = append(s.servers,
			&dns.Server{Handler: h, ReadTimeout: rt, WriteTimeout: wt,
				PacketConn: conns[i], UDPSize: maxUDPQuery},
			&dns.Server{Handler: h, ReadTimeout: rt, WriteTimeout: wt,
				Listener: &limitListener{Listener: lns[i], sem: sem}})
	}

	var wg sync.WaitGroup
	started := make(chan error, len(s.servers))
	for _, srv := range s.servers {
		var once sync.Once
		srv.NotifyStartedFunc = func() { once.Do(func() { started <- nil }) }
		wg.Go(func() {
			err := srv.ActivateAndServe()
			once.Do(func() { started <- fmt.Errorf("dnsfilter: starting a listener: %w", err) })
			if err != nil {
				s.fail(err)
			}
		})
	}
	go func() {
		wg.Wait()
		close(s.done)
	}()
	var errs []error
	for range s.servers {
		if err := <-started; err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		s.Shutdown(context.Background())
		closeAll()
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// bind opens UDP and TCP on ap; with port 0, on one port free for both.
func bind(ap netip.AddrPort, freeBind bool) (net.PacketConn, net.Listener, error) {
	if !ap.IsValid() {
		return nil, nil, errors.New("not a valid address")
	}
	var lc net.ListenConfig
	if freeBind {
		if freeBindControl == nil {
			return nil, nil, errors.New("binding an address the host does not have is possible only on Linux")
		}
		lc.Control = freeBindControl
	}
	ctx := context.Background()
	for range 20 {
		pc, err := lc.ListenPacket(ctx, "udp", ap.String())
		if err != nil {
			return nil, nil, err
		}
		ln, err := lc.Listen(ctx, "tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if ap.Port() != 0 || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, err
		}
		// The port picked for UDP is taken for TCP: pick another.
	}
	return nil, nil, errors.New("found no port free for both UDP and TCP")
}

func (s *Server) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
}

// Addrs returns the addresses served on, with the ports picked for port 0.
func (s *Server) Addrs() []netip.AddrPort { return s.addrs }

// Shutdown stops every listener and waits, until ctx is done, for the
// queries being answered.
func (s *Server) Shutdown(ctx context.Context) error {
	for _, srv := range s.servers {
		// The only other error is "server not started", for a listener
		// that has stopped already.
		srv.ShutdownContext(ctx)
	}
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("dnsfilter: shutting down: %w", ctx.Err())
	}
}

// Wait blocks until every listener has stopped and returns the error the
// first one to fail stopped with, or nil when all stopped by Shutdown.
func (s *Server) Wait() error {
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// limitListener bounds the connections open at once through sem, shared by
// the TCP listeners of a Server. A connection over the bound is closed at
// once: a client that finds no room gets an answer straight away (a closed
// connection) rather than a wait in the accept queue.
type limitListener struct {
	net.Listener
	sem chan struct{}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.sem <- struct{}{}:
			return &limitConn{Conn: c, release: sync.OnceFunc(func() { <-l.sem })}, nil
		default:
			c.Close()
		}
	}
}

type limitConn struct {
	net.Conn
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}
