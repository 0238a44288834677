// kafkajs transactions driver for tests/e2e/test_kafkajs_txn.py: one scenario per run against a
// Sluice broker, with kafkajs (the version pinned in package.json).
//
//   node txn.js SCENARIO BOOTSTRAP < spec.json
//
// Same conventions as driver.js: the spec (JSON on stdin) says what to do, the driver prints one
// line "RESULT <json>" with what the client saw and exits 0; the Python test decides whether
// that is right. Anything that goes wrong prints "FAIL <error>" and exits 1. Keys and values
// travel as hex strings. kafkajs logs go to stderr. Every wait is bounded (spec.timeout_ms).
'use strict'

const { Partitioners } = require('kafkajs')
const { client, hexToBuffer, bufferToHex, waitFor, runMain } = require('./common')

const toMessage = r => ({ key: hexToBuffer(r.key), value: hexToBuffer(r.value),
                          partition: r.partition })

const recordOut = (partition, message) => ({
  partition,
  offset: Number(message.offset),
  key: bufferToHex(message.key),
  value: bufferToHex(message.value),
})

const metadataOut = answer => answer.map(m => ({ partition: m.partition, errorCode: m.errorCode,
  baseOffset: m.baseOffset === undefined ? null : Number(m.baseOffset) }))
  .sort((x, y) => x.partition - y.partition)

const sleep = ms => new Promise(r => setTimeout(r, ms))

async function committedOffsets(admin, group, topic) {
  const answer = await admin.fetchOffsets({ groupId: group, topics: [topic] })
  return answer[0].partitions.map(p => ({ partition: p.partition, offset: Number(p.offset) }))
    .sort((x, y) => x.partition - y.partition)
}

async function topicOffsets(admin, topic) {
  return (await admin.fetchTopicOffsets(topic)).map(p => ({ partition: p.partition,
    low: Number(p.low), high: Number(p.high), offset: Number(p.offset) }))
    .sort((x, y) => x.partition - y.partition)
}

// A group consumer on `topic` until it holds `count` records (then a grace period in which
// anything more is reported too: a duplicate, or a record it should never have seen).
// readUncommitted false is kafkajs's default, READ_COMMITTED fetches.
async function readTopic(kafka, { topic, group, count, readUncommitted, waitMs, graceMs }) {
  const consumer = kafka.consumer({ groupId: group, sessionTimeout: 10000, heartbeatInterval: 1000,
                                    maxWaitTimeInMs: 200, readUncommitted })
  const records = []
  let crashed = null
  consumer.on(consumer.events.CRASH, e => { crashed = e.payload.error })
  await consumer.connect()
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        records.push(recordOut(partition, message))
      },
    })
    await waitFor(`${count} records of ${topic} (readUncommitted ${readUncommitted})`,
                  () => crashed || records.length >= count, waitMs || 20000)
    if (crashed) throw crashed
    await sleep(graceMs || 1500)
    if (crashed) throw crashed
  } finally {
    await consumer.disconnect()
  }
  return records
}

const txnProducer = (kafka, transactionalId) => kafka.producer({
  transactionalId, idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false,
  createPartitioner: Partitioners.DefaultPartitioner,
})

// ---------------------------------------------------------------------------------------------
// txn: spec.input is produced (no transaction) to spec.src, then one transactional producer runs
// spec.transactions in order, each {records, offsets, end}: txn.send(records to spec.dst),
// txn.sendOffsets({consumerGroupId: spec.group, topics: [{topic: src, partitions: offsets}]}),
// then txn.commit() or txn.abort() as `end` says. After each one the group's committed offsets
// are fetched. Then spec.dst is read back with a read_committed and a read_uncommitted consumer,
// and a consumer in spec.group reads spec.src from its committed offsets (fromBeginning is true,
// so it would start at 0 without them).
async function txn(bootstrap, spec) {
  const kafka = client(bootstrap, 'sluice-e2e-kafkajs-txn')
  const admin = kafka.admin()
  await admin.connect()
  const out = { steps: [] }
  try {
    await admin.createTopics({
      waitForLeaders: true,
      timeout: 10000,
      topics: [spec.src, spec.dst].map(topic => ({ topic, numPartitions: spec.partitions })),
    })
    const plain = kafka.producer({ allowAutoTopicCreation: false,
                                  createPartitioner: Partitioners.DefaultPartitioner })
    await plain.connect()
    await plain.send({ topic: spec.src, acks: -1, messages: spec.input.map(toMessage) })
    await plain.disconnect()

    const producer = txnProducer(kafka, spec.txn_id)
    await producer.connect() // InitProducerId with the transactional id
    try {
      for (const t of spec.transactions) {
        const tx = await producer.transaction()
        const step = { end: t.end, active_before_end: tx.isActive() }
        step.sent = metadataOut(await tx.send({ topic: spec.dst, acks: -1,
                                                messages: t.records.map(toMessage) }))
        await tx.sendOffsets({
          consumerGroupId: spec.group,
          topics: [{ topic: spec.src, partitions: t.offsets.map(o => ({ partition: o.partition,
                                                                         offset: String(o.offset) })) }],
        })
        if (t.end === 'commit') await tx.commit()
        else await tx.abort()
        step.active_after_end = tx.isActive()
        step.committed = await committedOffsets(admin, spec.group, spec.src)
        out.steps.push(step)
      }
    } finally {
      await producer.disconnect()
    }
    out.dst_offsets = await topicOffsets(admin, spec.dst)

    out.read_committed = await readTopic(kafka, { topic: spec.dst, group: spec.group + '-rc',
      count: spec.expect_committed, readUncommitted: false })
    out.read_uncommitted = await readTopic(kafka, { topic: spec.dst, group: spec.group + '-ru',
      count: spec.expect_all, readUncommitted: true })
    out.resumed = await readTopic(kafka, { topic: spec.src, group: spec.group,
      count: spec.expect_resumed, readUncommitted: false })
    out.committed_at_end = await committedOffsets(admin, spec.group, spec.src)
  } finally {
    await admin.disconnect()
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// fence: a transactional producer ("old") sends spec.open to spec.topic in a transaction it
// leaves open, and a plain producer writes spec.behind after it; the topic's offsets are fetched
// (kafkajs's admin asks READ_COMMITTED: the last stable offset) and a read_committed consumer
// reads what is visible. A second producer with the same transactional id begins a transaction
// (InitProducerId: a new epoch, the open transaction aborted); old's commit is then tried and
// its outcome reported. The new producer commits spec.fresh. Everything is read back with
// read_committed and read_uncommitted.
async function fence(bootstrap, spec) {
  const kafka = client(bootstrap, 'sluice-e2e-kafkajs-fence')
  const admin = kafka.admin()
  await admin.connect()
  const out = {}
  try {
    await admin.createTopics({ waitForLeaders: true, timeout: 10000,
                               topics: [{ topic: spec.topic, numPartitions: 1 }] })
    const plain = kafka.producer({ allowAutoTopicCreation: false,
                                  createPartitioner: Partitioners.DefaultPartitioner })
    await plain.connect()
    await plain.send({ topic: spec.topic, acks: -1, messages: spec.before.map(toMessage) })

    const old = txnProducer(kafka, spec.txn_id)
    await old.connect()
    const oldTx = await old.transaction()
    out.open_sent = metadataOut(await oldTx.send({ topic: spec.topic, acks: -1,
                                                   messages: spec.open.map(toMessage) }))
    // Behind the open transaction: not readable under read_committed until it ends.
    await plain.send({ topic: spec.topic, acks: -1, messages: spec.behind.map(toMessage) })
    await plain.disconnect()
    out.offsets_while_open = await topicOffsets(admin, spec.topic)
    out.read_committed_while_open = await readTopic(kafka, { topic: spec.topic,
      group: spec.group + '-open', count: spec.before.length, readUncommitted: false,
      graceMs: 2000 })

    // kafkajs's connect() asks for a plain idempotent producer id; the transactional
    // InitProducerId (a new epoch for the id, old's open transaction aborted) is sent by the
    // first transaction().
    const fresh = txnProducer(kafka, spec.txn_id)
    await fresh.connect()
    const tx = await fresh.transaction()
    try {
      await oldTx.commit()
      out.old_commit = { ok: true }
    } catch (e) {
      out.old_commit = { ok: false, name: e.name, type: e.type || null, message: e.message }
    }
    await old.disconnect().catch(() => {})

    out.fresh_sent = metadataOut(await tx.send({ topic: spec.topic, acks: -1,
                                                messages: spec.fresh.map(toMessage) }))
    await tx.commit()
    await fresh.disconnect()
    out.offsets_at_end = await topicOffsets(admin, spec.topic)
    const visible = spec.before.length + spec.behind.length + spec.fresh.length
    out.read_committed = await readTopic(kafka, { topic: spec.topic, group: spec.group + '-rc',
      count: visible, readUncommitted: false })
    out.read_uncommitted = await readTopic(kafka, { topic: spec.topic, group: spec.group + '-ru',
      count: visible + spec.open.length, readUncommitted: true })
  } finally {
    await admin.disconnect()
  }
  return out
}

const SCENARIOS = { txn, fence }

runMain('txn.js', SCENARIOS)
