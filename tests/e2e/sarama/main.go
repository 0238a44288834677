// sarama_e2e drives a Sluice broker with Go's sarama client (Debian's golang-github-shopify-sarama-dev):
// a SyncProducer writes keyed records with headers, under each acks level and compression codec,
// and a partition consumer (ConsumePartition, no group) reads every one of them back from the
// oldest offset and then a new one from the newest offset. It prints "OK ..." and exits 0 when
// every record came back exactly as written at the offset the producer was told; otherwise it
// prints what differed and exits 1. Every wait is bounded.
//
// Built by test_sarama.py with GO111MODULE=off and GOPATH=/usr/share/gocode.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/Shopify/sarama"
)

const waitTimeout = 20 * time.Second

type written struct {
	key, value []byte
	header     []byte
	partition  int32
	offset     int64
}

func fail(format string, args ...interface{}) {
	fmt.Printf("FAIL "+format+"\n", args...)
	os.Exit(1)
}

func config() *sarama.Config {
	c := sarama.NewConfig()
	c.ClientID = "sluice-e2e-sarama"
	// 0.11 is the first version with record batches and headers; Sluice serves Produce from v3.
	c.Version = sarama.V0_11_0_0
	c.Producer.Return.Successes = true
	c.Producer.Return.Errors = true
	c.Producer.Timeout = 10 * time.Second
	c.Producer.Retry.Max = 5
	c.Producer.Retry.Backoff = 200 * time.Millisecond
	c.Metadata.Retry.Max = 10
	c.Metadata.Retry.Backoff = 200 * time.Millisecond
	c.Net.DialTimeout = 5 * time.Second
	c.Net.ReadTimeout = 15 * time.Second
	c.Net.WriteTimeout = 5 * time.Second
	c.Consumer.Return.Errors = true
	c.Consumer.MaxWaitTime = 250 * time.Millisecond
	return c
}

// produce writes n records with one producer configured for acks and codec.
func produce(brokers []string, topic string, n int, acks sarama.RequiredAcks,
	codec sarama.CompressionCodec, tag string) []written {
	c := config()
	c.Producer.RequiredAcks = acks
	c.Producer.Compression = codec
	p, err := sarama.NewSyncProducer(brokers, c)
	if err != nil {
		fail("NewSyncProducer(%s): %v", tag, err)
	}
	defer p.Close()
	var out []written
	var batch []*sarama.ProducerMessage
	for i := 0; i < n; i++ {
		key := []byte(fmt.Sprintf("%s-key-%d", tag, i))
		value := bytes.Repeat([]byte(fmt.Sprintf("%s value %d|", tag, i)), 1+i%7)
		header := []byte(fmt.Sprintf("h%d", i))
		m := &sarama.ProducerMessage{
			Topic:   topic,
			Key:     sarama.ByteEncoder(key),
			Value:   sarama.ByteEncoder(value),
			Headers: []sarama.RecordHeader{{Key: []byte("idx"), Value: header}},
		}
		// Half the records go one by one (SendMessage), half as a set (SendMessages).
		if i%2 == 0 {
			part, off, err := p.SendMessage(m)
			if err != nil {
				fail("SendMessage %s #%d: %v", tag, i, err)
			}
			out = append(out, written{key, value, header, part, off})
		} else {
			batch = append(batch, m)
		}
	}
	if err := p.SendMessages(batch); err != nil {
		fail("SendMessages %s: %v", tag, err)
	}
	for _, m := range batch {
		k, _ := m.Key.Encode()
		v, _ := m.Value.Encode()
		out = append(out, written{k, v, m.Headers[0].Value, m.Partition, m.Offset})
	}
	return out
}

// consumeAll reads every partition of topic from the oldest offset until it has seen want
// records, and checks each against what was written at that partition and offset.
func consumeAll(brokers []string, topic string, want []written) {
	consumer, err := sarama.NewConsumer(brokers, config())
	if err != nil {
		fail("NewConsumer: %v", err)
	}
	defer consumer.Close()
	byPos := map[string]written{}
	perPartition := map[int32]int{}
	for _, w := range want {
		byPos[fmt.Sprintf("%d/%d", w.partition, w.offset)] = w
		perPartition[w.partition]++
	}
	partitions, err := consumer.Partitions(topic)
	if err != nil {
		fail("Partitions: %v", err)
	}
	seen := 0
	for _, part := range partitions {
		if perPartition[part] == 0 {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, part, sarama.OffsetOldest)
		if err != nil {
			fail("ConsumePartition(%d): %v", part, err)
		}
		deadline := time.After(waitTimeout)
		for got := 0; got < perPartition[part]; {
			select {
			case m := <-pc.Messages():
				pos := fmt.Sprintf("%d/%d", m.Partition, m.Offset)
				w, ok := byPos[pos]
				if !ok {
					fail("unexpected record at %s", pos)
				}
				if !bytes.Equal(m.Key, w.key) || !bytes.Equal(m.Value, w.value) {
					fail("record at %s: key %q value %q, wrote key %q value %q", pos, m.Key,
						m.Value, w.key, w.value)
				}
				if len(m.Headers) != 1 || string(m.Headers[0].Key) != "idx" ||
					!bytes.Equal(m.Headers[0].Value, w.header) {
					fail("record at %s: headers %v", pos, m.Headers)
				}
				delete(byPos, pos)
				got++
				seen++
			case err := <-pc.Errors():
				fail("partition %d: %v", part, err)
			case <-deadline:
				fail("partition %d: timed out after %d of %d records", part, got,
					perPartition[part])
			}
		}
		pc.Close()
	}
	if seen != len(want) || len(byPos) != 0 {
		fail("read %d of %d records; missing %d", seen, len(want), len(byPos))
	}
}

// consumeNewest starts a partition consumer at the newest offset, then writes one record and
// expects exactly that record.
func consumeNewest(brokers []string, topic string) {
	c := config()
	c.Producer.Partitioner = sarama.NewManualPartitioner // honour Partition: 0
	client, err := sarama.NewClient(brokers, c)
	if err != nil {
		fail("NewClient: %v", err)
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		fail("NewConsumerFromClient: %v", err)
	}
	defer consumer.Close()
	end, err := client.GetOffset(topic, 0, sarama.OffsetNewest)
	if err != nil {
		fail("GetOffset(newest): %v", err)
	}
	pc, err := consumer.ConsumePartition(topic, 0, sarama.OffsetNewest)
	if err != nil {
		fail("ConsumePartition(newest): %v", err)
	}
	defer pc.Close()
	p, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		fail("NewSyncProducerFromClient: %v", err)
	}
	defer p.Close()
	// Give the consumer a moment to issue its first fetch at the old end, so this really
	// exercises a fetch that waits for new data.
	time.Sleep(300 * time.Millisecond)
	_, off, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 0,
		Value: sarama.StringEncoder("the newest")})
	if err != nil {
		fail("SendMessage(newest): %v", err)
	}
	if off != end {
		fail("newest record got offset %d, log end was %d", off, end)
	}
	select {
	case m := <-pc.Messages():
		if m.Offset != off || string(m.Value) != "the newest" {
			fail("newest: got offset %d value %q, want offset %d", m.Offset, m.Value, off)
		}
	case err := <-pc.Errors():
		fail("newest: %v", err)
	case <-time.After(waitTimeout):
		fail("newest: timed out")
	}
}

func main() {
	broker := flag.String("broker", "", "bootstrap host:port")
	topic := flag.String("topic", "sarama", "topic to use (auto-created)")
	n := flag.Int("n", 200, "records per producer")
	flag.Parse()
	if *broker == "" {
		fail("-broker is required")
	}
	brokers := []string{*broker}

	var all []written
	runs := []struct {
		acks  sarama.RequiredAcks
		codec sarama.CompressionCodec
		tag   string
	}{
		{sarama.WaitForAll, sarama.CompressionNone, "all-none"},
		{sarama.WaitForLocal, sarama.CompressionGZIP, "one-gzip"},
		{sarama.WaitForAll, sarama.CompressionSnappy, "all-snappy"},
		{sarama.WaitForLocal, sarama.CompressionLZ4, "one-lz4"},
	}
	for _, r := range runs {
		all = append(all, produce(brokers, *topic, *n, r.acks, r.codec, r.tag)...)
	}
	consumeAll(brokers, *topic, all)
	consumeNewest(brokers, *topic)
	fmt.Printf("OK produced and consumed %d records\n", len(all))
}
