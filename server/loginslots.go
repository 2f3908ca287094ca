package server

import (
	"sync"
	"time"
)

// loginQueueWait is how long a login waits for its address's turn.
const loginQueueWait = 3 * time.Second

// loginSlots lets one login per client address (per key: an IPv6 client
// by its prefix, see addrKey) check its password at a time. A single address can then never hold more than one of the bcrypt
// slots that all logins share, so one attacker cannot crowd out everyone
// else; and its logins are checked strictly one after another, so the ban
// that its max_failures-th failure sets is seen by the next one before any
// more bcrypt work is done.
type loginSlots struct {
	mu    sync.Mutex
	wait  time.Duration // loginQueueWait; shorter in tests
	slots map[string]*loginSlot
}

type loginSlot struct {
	turn    chan struct{} // holds a token while a login of this address runs
	waiters int           // logins holding or waiting for the turn
}

func newLoginSlots() *loginSlots {
	return &loginSlots{wait: loginQueueWait, slots: make(map[string]*loginSlot)}
}

// acquire waits for ip's turn, up to l.wait. It returns the release
// function, or false if the turn did not come.
func (l *loginSlots) acquire(ip string) (func(), bool) {
	l.mu.Lock()
	slot := l.slots[ip]
	if slot == nil {
		slot = &loginSlot{turn: make(chan struct{}, 1)}
		l.slots[ip] = slot
	}
	slot.waiters++
	wait := l.wait
	l.mu.Unlock()

	timer := time.NewTimer(wait)
	defer timer.Stop()

	select {
	case slot.turn <- struct{}{}:
		return func() {
			<-slot.turn
			l.leave(ip, slot)
		}, true
	case <-timer.C:
		l.leave(ip, slot)

		return nil, false
	}
}

// leave forgets the address once nobody holds or waits for its turn.
func (l *loginSlots) leave(ip string, slot *loginSlot) {
	l.mu.Lock()
	defer l.mu.Unlock()

	if slot.waiters--; slot.waiters == 0 {
		delete(l.slots, ip)
	}
}
