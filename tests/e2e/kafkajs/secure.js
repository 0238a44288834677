// kafkajs over SASL_SSL for tests/e2e/test_security.py: produces spec.count records to
// spec.topic, then reads them back with a group consumer, authenticating with spec.mechanism
// ("scram-sha-512", "scram-sha-256", "plain") and trusting spec.ca (a PEM file).
//
//   node secure.js produce-consume HOST:PORT < spec.json   ->  RESULT {"values": [...]}
'use strict'

const fs = require('fs')
const { Kafka, logLevel } = require('kafkajs')
const { runMain, waitFor } = require('./common')

function secureClient(bootstrap, spec) {
  return new Kafka({
    clientId: 'sluice-e2e-secure',
    brokers: [bootstrap],
    connectionTimeout: 5000,
    requestTimeout: 15000,
    retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1000 },
    logLevel: logLevel.NOTHING,
    ssl: { ca: [fs.readFileSync(spec.ca, 'utf8')], servername: 'localhost' },
    sasl: { mechanism: spec.mechanism, username: spec.username, password: spec.password },
  })
}

const scenarios = {
  'produce-consume': async (bootstrap, spec) => {
    const kafka = secureClient(bootstrap, spec)
    const producer = kafka.producer()
    await producer.connect()
    const messages = []
    for (let i = 0; i < spec.count; i++) messages.push({ value: `kafkajs-${i}` })
    await producer.send({ topic: spec.topic, acks: -1, messages })
    await producer.disconnect()
    const consumer = kafka.consumer({ groupId: spec.group, sessionTimeout: 10000 })
    await consumer.connect()
    await consumer.subscribe({ topic: spec.topic, fromBeginning: true })
    const values = []
    await consumer.run({ eachMessage: async ({ message }) => { values.push(message.value.toString()) } })
    await waitFor('all records', () => values.length >= spec.count, spec.timeout_ms || 60000)
    await consumer.disconnect()
    return { values }
  },
}

runMain('secure.js', scenarios)
