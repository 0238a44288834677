// What the kafkajs drivers (driver.js, txn.js) share: the client they build, the hex codec of
// keys and values, bounded waits, and the run-one-scenario main (spec as JSON on stdin, one
// "RESULT <json>" line on stdout, or "FAIL <error>" and exit 1; every run bounded by
// spec.timeout_ms).
'use strict'

const net = require('net')
const { Kafka, logLevel } = require('kafkajs')

const WAIT_STEP_MS = 20
const KEEP_ALIVE_DELAY_MS = 60000

// With spec.localhost_ipv6, "localhost" is reached at ::1, as it is where /etc/hosts lists
// "::1 localhost" (Debian's default) and Node.js 17+ takes the resolver's first answer
// (Node.js 18, Debian 12's, does not fall back to 127.0.0.1). Set once from the spec.
let localhostIpv6 = false

function socketFactory({ host, port, onConnect }) {
  const socket = net.connect({ host: host === 'localhost' ? '::1' : host, port }, onConnect)
  socket.setKeepAlive(true, KEEP_ALIVE_DELAY_MS)
  return socket
}

function stderrLogger() {
  return ({ namespace, level, label, log }) => {
    const { message, ...extra } = log
    process.stderr.write(`[kafkajs ${label} ${namespace}] ${message} ${JSON.stringify(extra)}\n`)
  }
}

function client(bootstrap, clientId) {
  return new Kafka({
    clientId,
    brokers: [bootstrap],
    connectionTimeout: 5000,
    requestTimeout: 15000,
    retry: { retries: 8, initialRetryTime: 100, maxRetryTime: 2000 },
    logLevel: logLevel.WARN,
    logCreator: stderrLogger,
    ...(localhostIpv6 ? { socketFactory } : {}),
  })
}

const hexToBuffer = h => (h === null || h === undefined ? null : Buffer.from(h, 'hex'))
const bufferToHex = b => (b === null || b === undefined ? null : Buffer.from(b).toString('hex'))

async function waitFor(what, predicate, timeoutMs) {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    }
    await new Promise(r => setTimeout(r, WAIT_STEP_MS))
  }
}

// Runs the scenario named on the command line (node DRIVER SCENARIO HOST:PORT < spec.json).
async function runMain(driver, scenarios) {
  const [scenario, bootstrap] = process.argv.slice(2)
  const fn = scenarios[scenario]
  if (!fn || !bootstrap) {
    const names = Object.keys(scenarios).join('|')
    process.stdout.write(`FAIL usage: node ${driver} {${names}} HOST:PORT < spec.json\n`)
    process.exit(2)
  }
  const chunks = []
  for await (const c of process.stdin) chunks.push(c)
  const spec = JSON.parse(Buffer.concat(chunks).toString() || '{}')
  localhostIpv6 = spec.localhost_ipv6 === true
  const timer = setTimeout(() => {
    process.stdout.write(`FAIL ${scenario} did not finish within ${spec.timeout_ms || 60000} ms\n`)
    process.exit(1)
  }, spec.timeout_ms || 60000)
  try {
    const result = await fn(bootstrap, spec)
    clearTimeout(timer)
    // Exit only once the line is written: stdout to a pipe is asynchronous in Node.
    process.stdout.write('RESULT ' + JSON.stringify(result) + '\n', () => process.exit(0))
  } catch (e) {
    clearTimeout(timer)
    process.stdout.write(`FAIL ${e && e.stack ? e.stack : e}\n`, () => process.exit(1))
  }
}

module.exports = { WAIT_STEP_MS, client, hexToBuffer, bufferToHex, waitFor, runMain }
