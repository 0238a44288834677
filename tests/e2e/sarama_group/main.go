// sarama_group drives Sluice's group coordinator with Go's sarama ConsumerGroup (Debian's
// golang-github-shopify-sarama-dev): it writes -n records to a topic, consumes them with two
// members of one group (both must get claims, and together see every record), closes them
// (committing what they marked), then writes one more record and checks that a fresh member of
// the same group starts from the committed offsets and sees exactly that record. Prints
// "OK ..." and exits 0, or "FAIL ..." and exits 1. Every wait is bounded.
//
// Built by test_groups_sarama.py with GO111MODULE=off and GOPATH=/usr/share/gocode.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/Shopify/sarama"
)

const waitTimeout = 60 * time.Second

func fail(format string, args ...interface{}) {
	fmt.Printf("FAIL "+format+"\n", args...)
	os.Exit(1)
}

func config() *sarama.Config {
	c := sarama.NewConfig()
	c.ClientID = "sluice-e2e-sarama-group"
	c.Version = sarama.V2_0_0_0
	c.Producer.Return.Successes = true
	c.Consumer.Return.Errors = true
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Offsets.CommitInterval = 200 * time.Millisecond
	c.Consumer.Group.Session.Timeout = 6 * time.Second
	c.Consumer.Group.Heartbeat.Interval = 500 * time.Millisecond
	c.Metadata.Retry.Max = 10
	c.Metadata.Retry.Backoff = 200 * time.Millisecond
	return c
}

// handler records what one member saw; every message is marked (committed by sarama).
type handler struct {
	mu     sync.Mutex
	seen   map[string]int
	claims int
}

func (h *handler) Setup(s sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	for _, parts := range s.Claims() {
		h.claims += len(parts)
	}
	h.mu.Unlock()
	return nil
}
func (h *handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *handler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		h.mu.Lock()
		h.seen[string(m.Value)]++
		h.mu.Unlock()
		s.MarkMessage(m, "")
	}
	return nil
}

func (h *handler) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.seen)
}

type member struct {
	group  sarama.ConsumerGroup
	h      *handler
	cancel context.CancelFunc
	done   chan struct{}
}

func startMember(broker, group, topic string) *member {
	g, err := sarama.NewConsumerGroup([]string{broker}, group, config())
	if err != nil {
		fail("consumer group: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{group: g, h: &handler{seen: map[string]int{}}, cancel: cancel, done: make(chan struct{})}
	go func() {
		for err := range g.Errors() {
			fmt.Printf("member error: %v\n", err)
		}
	}()
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			if err := g.Consume(ctx, []string{topic}, m.h); err != nil {
				fmt.Printf("consume: %v\n", err)
				time.Sleep(200 * time.Millisecond)
			}
		}
	}()
	return m
}

func (m *member) stop() {
	m.cancel()
	<-m.done
	if err := m.group.Close(); err != nil {
		fail("close: %v", err)
	}
}

func produce(broker, topic string, from, to int) {
	p, err := sarama.NewSyncProducer([]string{broker}, config())
	if err != nil {
		fail("producer: %v", err)
	}
	defer p.Close()
	for i := from; i < to; i++ {
		v := fmt.Sprintf("v%d", i)
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(v), Value: sarama.StringEncoder(v)}); err != nil {
			fail("produce %s: %v", v, err)
		}
	}
}

func waitFor(what string, cond func() bool) {
	deadline := time.Now().Add(waitTimeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	fail("timed out waiting for %s", what)
}

func main() {
	broker := flag.String("broker", "127.0.0.1:9092", "bootstrap broker")
	topic := flag.String("topic", "sarama-group", "topic (auto-created)")
	group := flag.String("group", "sarama-group", "group id")
	n := flag.Int("n", 300, "records")
	flag.Parse()

	produce(*broker, *topic, 0, *n)
	a := startMember(*broker, *group, *topic)
	b := startMember(*broker, *group, *topic)
	union := func() int {
		all := map[string]bool{}
		for _, h := range []*handler{a.h, b.h} {
			h.mu.Lock()
			for v := range h.seen {
				all[v] = true
			}
			h.mu.Unlock()
		}
		return len(all)
	}
	waitFor("both members to be assigned partitions", func() bool {
		a.h.mu.Lock()
		b.h.mu.Lock()
		defer a.h.mu.Unlock()
		defer b.h.mu.Unlock()
		return a.h.claims > 0 && b.h.claims > 0
	})
	waitFor(fmt.Sprintf("all %d records", *n), func() bool { return union() == *n })
	time.Sleep(500 * time.Millisecond) // a commit interval
	a.stop()
	b.stop()

	produce(*broker, *topic, *n, *n+1)
	c := startMember(*broker, *group, *topic)
	waitFor("the record written after the commit", func() bool { return c.h.count() >= 1 })
	time.Sleep(time.Second)
	c.h.mu.Lock()
	seen := c.h.seen
	c.h.mu.Unlock()
	if len(seen) != 1 || seen[fmt.Sprintf("v%d", *n)] != 1 {
		fail("the new member did not resume from the committed offsets: saw %d records", len(seen))
	}
	c.stop()
	fmt.Printf("OK group of 2 consumed %d records; a new member resumed after them\n", *n)
}
