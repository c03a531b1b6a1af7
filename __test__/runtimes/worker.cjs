// The worker thread of the smoke suite's worker case: blocks in
// SyncSocket#receive on the socket it is given, and posts what came.
'use strict'
const { parentPort, workerData } = require('node:worker_threads')
const { SyncSocket } = require('../..')

const socket = SyncSocket.from(workerData)
const { data, fds } = socket.receive()
socket.close()
parentPort.postMessage({ text: data.toString(), fds })
