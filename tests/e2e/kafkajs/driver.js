// kafkajs driver for tests/e2e/test_kafkajs.py: one scenario per run, doing real client work
// against a Sluice broker with kafkajs (the version pinned in package.json).
//
//   node driver.js SCENARIO BOOTSTRAP < spec.json
//
// The spec (JSON on stdin) says what to do; the driver prints one line "RESULT <json>" with
// what the client saw (records with their partitions and offsets, metadata, configs, group
// assignments) and exits 0. The Python test decides whether that is right. Anything that goes
// wrong prints "FAIL <error>" and exits 1. Binary keys, values and header values travel as hex
// strings; null stays null. kafkajs logs go to stderr. Every wait is bounded: a scenario that
// has not finished within spec.timeout_ms (default 60 s) fails.
'use strict'

const { AssignerProtocol, CompressionTypes, ConfigResourceTypes, Partitioners } = require('kafkajs')

const { client, hexToBuffer, bufferToHex, waitFor, runMain } = require('./common')

function toKafkaHeaders(pairs) {
  if (!pairs) return undefined
  const out = {}
  for (const [name, hex] of pairs) {
    const v = hexToBuffer(hex)
    if (!(name in out)) out[name] = v
    else if (Array.isArray(out[name])) out[name].push(v)
    else out[name] = [out[name], v]
  }
  return out
}

// Back to [[name, hex], ...] in wire order (kafkajs groups repeated names into arrays, keeping
// their order; names themselves come back in first-seen order).
function fromKafkaHeaders(headers) {
  const out = []
  for (const [name, v] of Object.entries(headers || {})) {
    for (const one of Array.isArray(v) ? v : [v]) out.push([name, bufferToHex(one)])
  }
  return out
}

function toMessage(r) {
  const m = { key: hexToBuffer(r.key), value: hexToBuffer(r.value) }
  if (r.headers) m.headers = toKafkaHeaders(r.headers)
  if (r.partition !== undefined && r.partition !== null) m.partition = r.partition
  if (r.timestamp !== undefined) m.timestamp = String(r.timestamp)
  return m
}

function recordOut(partition, message) {
  return {
    partition,
    offset: Number(message.offset),
    key: bufferToHex(message.key),
    value: bufferToHex(message.value),
    headers: fromKafkaHeaders(message.headers),
    timestamp: Number(message.timestamp),
  }
}

const configEntries = configs => Object.entries(configs).map(([name, value]) => ({ name, value }))

const COMPRESSION = { none: CompressionTypes.None, gzip: CompressionTypes.GZIP }

// ---------------------------------------------------------------------------------------------
// admin: every admin call the spec's topic goes through, results returned for checking.
async function admin(bootstrap, spec) {
  const kafka = client(bootstrap, 'sluice-e2e-kafkajs-admin')
  const a = kafka.admin()
  await a.connect()
  const out = {}
  try {
    const topic = spec.topic
    out.created = await a.createTopics({
      waitForLeaders: true,
      timeout: 10000,
      topics: [{ topic, numPartitions: spec.partitions, replicationFactor: 1,
                 configEntries: configEntries(spec.configs) }],
    })
    // A second create of the same topic is answered TOPIC_ALREADY_EXISTS, which kafkajs turns
    // into `false` rather than an error.
    out.created_again = await a.createTopics({ topics: [{ topic, numPartitions: 1 }] })
    out.listed_after_create = (await a.listTopics()).includes(topic)
    out.metadata = metadataOut(await a.fetchTopicMetadata({ topics: [topic] }))
    out.cluster = await a.describeCluster()

    const describe = async () => {
      const r = await a.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }],
      })
      const res = r.resources[0]
      return { errorCode: res.errorCode, resourceName: res.resourceName,
               entries: Object.fromEntries(res.configEntries.map(e => [e.configName,
                 { value: e.configValue, isDefault: e.isDefault, readOnly: e.readOnly,
                   source: e.configSource }])) }
    }
    out.configs = await describe()
    await a.alterConfigs({
      validateOnly: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic,
                    configEntries: configEntries(spec.altered_configs) }],
    })
    out.configs_after_alter = await describe()

    await a.createPartitions({ topicPartitions: [{ topic, count: spec.partitions_after }] })
    out.metadata_after_grow = metadataOut(await a.fetchTopicMetadata({ topics: [topic] }))
    out.offsets = (await a.fetchTopicOffsets(topic)).map(p => ({ partition: p.partition,
      low: Number(p.low), high: Number(p.high) })).sort((x, y) => x.partition - y.partition)

    await a.deleteTopics({ topics: [topic], timeout: 10000 })
    out.listed_after_delete = (await a.listTopics()).includes(topic)
  } finally {
    await a.disconnect()
  }
  return out
}

function metadataOut(m) {
  return m.topics.map(t => ({
    name: t.name,
    partitions: t.partitions.map(p => ({ partition: p.partitionId, leader: p.leader,
      replicas: p.replicas, isr: p.isr, errorCode: p.partitionErrorCode }))
      .sort((x, y) => x.partition - y.partition),
  }))
}

// ---------------------------------------------------------------------------------------------
// create: spec.topics = [{topic, partitions, configs?}], created with the admin client.
async function create(bootstrap, spec) {
  const a = client(bootstrap, 'sluice-e2e-kafkajs-admin').admin()
  await a.connect()
  try {
    return await a.createTopics({
      waitForLeaders: true,
      timeout: 10000,
      topics: spec.topics.map(t => ({ topic: t.topic, numPartitions: t.partitions,
        configEntries: configEntries(t.configs || {}) })),
    })
  } finally {
    await a.disconnect()
  }
}

// ---------------------------------------------------------------------------------------------
// produce: spec.sends is a list of sends, each {records, acks, compression}; every send is one
// producer.send() call (one request per partition leader). Returns kafkajs's RecordMetadata.
async function produce(bootstrap, spec) {
  const kafka = client(bootstrap, 'sluice-e2e-kafkajs-producer')
  const options = { allowAutoTopicCreation: false,
                    createPartitioner: Partitioners.DefaultPartitioner }
  if (spec.idempotent) {
    options.idempotent = true
    options.maxInFlightRequests = spec.max_in_flight
  }
  const producer = kafka.producer(options)
  await producer.connect()
  const results = []
  try {
    const sends = spec.sends.map(s => () => producer.send({
      topic: spec.topic, acks: s.acks, timeout: 10000,
      compression: COMPRESSION[s.compression || 'none'],
      messages: s.records.map(toMessage),
    }))
    if (spec.concurrent) {
      // Several sends in flight at once: with an idempotent producer this is what
      // maxInFlightRequests > 1 is for.
      results.push(...await Promise.all(sends.map(f => f())))
    } else {
      for (const f of sends) results.push(await f())
    }
  } finally {
    await producer.disconnect()
  }
  return results.map(r => r.map(m => ({ partition: m.partition, errorCode: m.errorCode,
    baseOffset: m.baseOffset === undefined ? null : Number(m.baseOffset) })))
}

// ---------------------------------------------------------------------------------------------
// consume: a group consumer (kafkajs consumers always belong to a group) reads spec.topic until
// it holds spec.count records, optionally seeking first. Returns the records in arrival order.
async function consume(bootstrap, spec) {
  const kafka = client(bootstrap, 'sluice-e2e-kafkajs-consumer')
  const options = { groupId: spec.group, sessionTimeout: 10000, heartbeatInterval: 1000,
                    maxWaitTimeInMs: 200 }
  if (spec.max_bytes) {
    // Limits below one record batch: the broker must still return the first batch whole.
    options.maxBytesPerPartition = spec.max_bytes
    options.maxBytes = spec.max_bytes
  }
  const consumer = kafka.consumer(options)
  const records = []
  let crashed = null
  consumer.on(consumer.events.CRASH, e => { crashed = e.payload.error })
  await consumer.connect()
  try {
    await consumer.subscribe({ topics: [spec.topic], fromBeginning: spec.from_beginning !== false })
    await consumer.run({
      autoCommit: spec.auto_commit !== false,
      eachMessage: async ({ partition, message }) => {
        records.push(recordOut(partition, message))
      },
    })
    for (const s of spec.seeks_before || []) consumer.seek(s)
    await waitFor(`${spec.count} records`, () => crashed || records.length >= spec.count,
                  spec.wait_ms || 30000)
    if (crashed) throw crashed
    // A second phase: seek after having read, then read spec.count_after more.
    if (spec.seek_after) {
      const before = records.length
      consumer.seek(spec.seek_after)
      await waitFor(`${spec.count_after} records after the seek`,
                    () => crashed || records.length >= before + spec.count_after,
                    spec.wait_ms || 30000)
      if (crashed) throw crashed
    }
    // Anything more that arrives within a short grace period is reported too (it would be a
    // duplicate or an unexpected record).
    await new Promise(r => setTimeout(r, spec.grace_ms || 500))
  } finally {
    await consumer.disconnect()
  }
  return records
}

// ---------------------------------------------------------------------------------------------
// offsets: spec.records (with timestamps) go to partition 0 of spec.topic; then offsets by
// timestamp; a consumer in spec.group reads spec.commit_at records and commits that offset with
// metadata by hand; deleteTopicRecords moves the log start past it; a new consumer in the group
// finds its committed offset out of range and starts again from the log start.
async function offsets(bootstrap, spec) {
  const kafka = client(bootstrap, 'sluice-e2e-kafkajs-offsets')
  const a = kafka.admin()
  const producer = kafka.producer({ allowAutoTopicCreation: false,
                                    createPartitioner: Partitioners.DefaultPartitioner })
  await Promise.all([a.connect(), producer.connect()])
  const out = {}
  const topic = spec.topic
  const offsetsOut = list => list.map(p => ({ partition: p.partition, offset: Number(p.offset) }))
  try {
    await producer.send({ topic, acks: -1, messages: spec.records.map(toMessage) })
    out.by_timestamp = {}
    for (const ts of spec.timestamps) {
      out.by_timestamp[ts] = offsetsOut(await a.fetchTopicOffsetsByTimestamp(topic, ts))
    }

    const member = async (options, count) => {
      const c = kafka.consumer({ groupId: spec.group, maxWaitTimeInMs: 200, ...options.consumer })
      const records = []
      let crashed = null
      c.on(c.events.CRASH, e => { crashed = e.payload.error })
      await c.connect()
      await c.subscribe({ topics: [topic], fromBeginning: true })
      await c.run({ autoCommit: options.autoCommit,
                    eachMessage: async ({ partition, message }) => {
                      records.push(recordOut(partition, message))
                    } })
      await waitFor(`${count} records`, () => crashed || records.length >= count, 30000)
      if (crashed) throw crashed
      return { c, records }
    }
    const first = await member({ autoCommit: false }, spec.commit_at)
    await first.c.commitOffsets([{ topic, partition: 0, offset: String(spec.commit_at),
                                   metadata: spec.commit_metadata }])
    await first.c.disconnect()
    out.committed = (await a.fetchOffsets({ groupId: spec.group, topics: [topic] }))[0].partitions
      .map(p => ({ partition: p.partition, offset: Number(p.offset), metadata: p.metadata }))

    const deleteBefore = String(spec.delete_before)
    await a.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: deleteBefore }] })
    out.after_delete = (await a.fetchTopicOffsets(topic)).map(p => ({ partition: p.partition,
      low: Number(p.low), high: Number(p.high) }))
    const second = await member({ autoCommit: true }, spec.records.length - spec.delete_before)
    await new Promise(r => setTimeout(r, 500))
    await second.c.disconnect()
    out.resumed = second.records.map(r => r.offset)
  } finally {
    await Promise.all([a.disconnect(), producer.disconnect()])
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// latest: a consumer with fromBeginning false joins, fetches once (so its position is resolved
// to the log end), then the driver produces spec.records; only those may arrive.
async function latest(bootstrap, spec) {
  const kafka = client(bootstrap, 'sluice-e2e-kafkajs-latest')
  const consumer = kafka.consumer({ groupId: spec.group, sessionTimeout: 10000,
                                    heartbeatInterval: 1000, maxWaitTimeInMs: 200 })
  const producer = kafka.producer({ allowAutoTopicCreation: false,
                                    createPartitioner: Partitioners.DefaultPartitioner })
  const records = []
  let fetches = 0
  consumer.on(consumer.events.FETCH, () => { fetches++ })
  await Promise.all([consumer.connect(), producer.connect()])
  try {
    await consumer.subscribe({ topics: [spec.topic], fromBeginning: false })
    await consumer.run({ eachMessage: async ({ partition, message }) => {
      records.push(recordOut(partition, message))
    } })
    await waitFor('the first fetch', () => fetches > 0, 30000)
    await producer.send({ topic: spec.topic, acks: -1, messages: spec.records.map(toMessage) })
    await waitFor(`${spec.records.length} new records`,
                  () => records.length >= spec.records.length, 30000)
    await new Promise(r => setTimeout(r, 500))
  } finally {
    await Promise.all([consumer.disconnect(), producer.disconnect()])
  }
  return records
}

// ---------------------------------------------------------------------------------------------
// group: two consumers in one group on spec.topic. Once both are members of the same
// generation, spec.first records are produced and the two read them; both disconnect (which
// commits). Then spec.second more records are produced and a third consumer in the same group
// reads from the committed offsets. Returns each member's assignment and records, the committed
// offsets, and what the third consumer read.
async function group(bootstrap, spec) {
  const kafka = client(bootstrap, 'sluice-e2e-kafkajs-group')
  const producer = kafka.producer({ allowAutoTopicCreation: false,
                                    createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  const admin = kafka.admin()
  await admin.connect()
  const out = { members: {} }
  try {
    const member = name => {
      const c = kafka.consumer({ groupId: spec.group, sessionTimeout: 10000,
                                 rebalanceTimeout: 20000, heartbeatInterval: 500,
                                 maxWaitTimeInMs: 200 })
      const m = { consumer: c, assignment: [], records: [], crashed: null, joins: 0 }
      c.on(c.events.GROUP_JOIN, e => {
        m.assignment = (e.payload.memberAssignment[spec.topic] || []).slice().sort((x, y) => x - y)
        m.member_id = e.payload.memberId
        m.leader_id = e.payload.leaderId
        m.joins++
      })
      c.on(c.events.CRASH, e => { m.crashed = e.payload.error })
      out.members[name] = m
      return m
    }
    const run = async m => {
      await m.consumer.connect()
      await m.consumer.subscribe({ topics: [spec.topic], fromBeginning: true })
      await m.consumer.run({ eachMessage: async ({ partition, message }) => {
        m.records.push(recordOut(partition, message))
      } })
    }
    const a = member('a')
    const b = member('b')
    await run(a)
    await run(b)
    const settled = () => {
      if (a.crashed || b.crashed) return true
      const all = [...a.assignment, ...b.assignment].sort((x, y) => x - y)
      return a.assignment.length > 0 && b.assignment.length > 0 && a.leader_id === b.leader_id &&
        all.length === spec.partitions && all.every((p, i) => p === i)
    }
    await waitFor('both members assigned', settled, 40000)
    if (a.crashed || b.crashed) throw a.crashed || b.crashed
    // The generation both are in now (the one that reads the first round); disconnecting one
    // of them later rebalances the other onto every partition.
    a.shared = a.assignment
    b.shared = b.assignment

    await producer.send({ topic: spec.topic, acks: -1, messages: spec.first.map(toMessage) })
    const total = () => a.records.length + b.records.length
    await waitFor(`${spec.first.length} records`, () => a.crashed || b.crashed ||
                  total() >= spec.first.length, 30000)
    if (a.crashed || b.crashed) throw a.crashed || b.crashed
    await new Promise(r => setTimeout(r, 500))
    const described = await a.consumer.describeGroup()
    out.described = { ...described, members: described.members.map(m => ({
      memberId: m.memberId, clientId: m.clientId, clientHost: m.clientHost,
      subscription: AssignerProtocol.MemberMetadata.decode(m.memberMetadata).topics,
      assignment: AssignerProtocol.MemberAssignment.decode(m.memberAssignment).assignment })) }
    // Disconnecting commits what each member consumed and leaves the group.
    await a.consumer.disconnect()
    await b.consumer.disconnect()
    out.committed = (await admin.fetchOffsets({ groupId: spec.group, topics: [spec.topic] }))[0]
      .partitions.map(p => ({ partition: p.partition, offset: Number(p.offset) }))
      .sort((x, y) => x.partition - y.partition)
    out.groups = (await admin.listGroups()).groups

    await producer.send({ topic: spec.topic, acks: -1, messages: spec.second.map(toMessage) })
    const c = member('c')
    await run(c)
    await waitFor(`${spec.second.length} records in the resumed consumer`,
                  () => c.crashed || c.records.length >= spec.second.length, 40000)
    if (c.crashed) throw c.crashed
    await new Promise(r => setTimeout(r, 1000))
    await c.consumer.disconnect()
    out.members = Object.fromEntries(Object.entries(out.members).map(([k, m]) =>
      [k, { assignment: m.shared || m.assignment, records: m.records, joins: m.joins }]))
    out.deleted = await admin.deleteGroups([spec.group])
  } finally {
    await Promise.all([producer.disconnect(), admin.disconnect()])
  }
  return out
}

const SCENARIOS = { admin, create, produce, consume, offsets, latest, group }

runMain('driver.js', SCENARIOS)
