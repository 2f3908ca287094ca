package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"syscall"
)

// Linux sock_diag (linux/sock_diag.h, linux/inet_diag.h), as ss uses it.
const (
	netlinkSockDiag   = 4  // NETLINK_SOCK_DIAG
	sockDiagByFamily  = 20 // SOCK_DIAG_BY_FAMILY
	tcpEstablished    = 1  // TCP_ESTABLISHED
	nlmsgHeaderLen    = 16
	inetDiagReqLen    = 56 // struct inet_diag_req_v2
	inetDiagMsgLen    = 72 // struct inet_diag_msg
	inetDiagNoCookie  = ^uint32(0)
	sockDiagBufferLen = 8 << 10
)

// queues are a TCP socket's send queue (bytes written and not yet
// acknowledged) and receive queue (bytes received and not yet read).
type queues struct{ tx, rx int64 }

// sockDiag asks the kernel about one TCP socket at a time, by its addresses,
// over NETLINK_SOCK_DIAG. /proc/net/tcp would list every socket of the
// machine: tens of thousands in TIME_WAIT after a connection flood, 150 ms
// of system time a read.
type sockDiag struct {
	mu  sync.Mutex
	fd  int
	seq uint32
	buf []byte
}

func openSockDiag() (*sockDiag, error) {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, netlinkSockDiag)
	if err != nil {
		return nil, fmt.Errorf("sock_diag socket: %w", err)
	}

	tv := syscall.Timeval{Sec: 1}
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		_ = syscall.Close(fd)

		return nil, fmt.Errorf("sock_diag socket: %w", err)
	}

	return &sockDiag{fd: fd, buf: make([]byte, sockDiagBufferLen)}, nil
}

func (d *sockDiag) Close() error { return syscall.Close(d.fd) }

// queues returns the queues of the established TCP socket whose own address
// is local and whose peer is remote, or zero when there is none (any more).
// Only established sockets count: a FIN takes a sequence number, so a socket
// being closed shows one byte more in its queue.
func (d *sockDiag) queues(local, remote netip.AddrPort) (queues, error) {
	d.mu.Lock()
	defer d.mu.Unlock()

	d.seq++
	req := make([]byte, nlmsgHeaderLen+inetDiagReqLen)
	binary.NativeEndian.PutUint32(req[0:], nlmsgHeaderLen+inetDiagReqLen)
	binary.NativeEndian.PutUint16(req[4:], sockDiagByFamily)
	binary.NativeEndian.PutUint16(req[6:], syscall.NLM_F_REQUEST)
	binary.NativeEndian.PutUint32(req[8:], d.seq)

	r := req[nlmsgHeaderLen:]
	r[0], r[1] = syscall.AF_INET, syscall.IPPROTO_TCP
	binary.NativeEndian.PutUint32(r[4:], ^uint32(0)) // any state; the reply says which
	binary.BigEndian.PutUint16(r[8:], local.Port())
	binary.BigEndian.PutUint16(r[10:], remote.Port())

	if !local.Addr().Unmap().Is4() || !remote.Addr().Unmap().Is4() {
		return queues{}, fmt.Errorf("sock_diag: %s -> %s: IPv4 only", local, remote)
	}

	src, dst := local.Addr().Unmap().As4(), remote.Addr().Unmap().As4()
	copy(r[12:], src[:])
	copy(r[28:], dst[:])
	binary.NativeEndian.PutUint32(r[48:], inetDiagNoCookie)
	binary.NativeEndian.PutUint32(r[52:], inetDiagNoCookie)

	if err := syscall.Sendto(d.fd, req, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return queues{}, fmt.Errorf("sock_diag: %w", err)
	}

	for {
		n, _, err := syscall.Recvfrom(d.fd, d.buf, 0)
		if err != nil {
			return queues{}, fmt.Errorf("sock_diag: %w", err)
		}

		msgs, err := syscall.ParseNetlinkMessage(d.buf[:n])
		if err != nil {
			return queues{}, fmt.Errorf("sock_diag: %w", err)
		}

		for _, m := range msgs {
			if m.Header.Seq != d.seq {
				continue // the answer to an earlier question that timed out
			}

			switch {
			case m.Header.Type == syscall.NLMSG_ERROR && len(m.Data) >= 4:
				errno := syscall.Errno(-binary.NativeEndian.Uint32(m.Data)) // the kernel sends -errno
				if errors.Is(errno, syscall.ENOENT) {
					return queues{}, nil
				}

				return queues{}, fmt.Errorf("sock_diag: %w", errno)
			case m.Header.Type == sockDiagByFamily && len(m.Data) >= inetDiagMsgLen:
				if m.Data[1] != tcpEstablished {
					return queues{}, nil
				}

				rq := binary.NativeEndian.Uint32(m.Data[56:])
				wq := binary.NativeEndian.Uint32(m.Data[60:])

				return queues{tx: int64(wq), rx: int64(rq)}, nil
			}
		}
	}
}
