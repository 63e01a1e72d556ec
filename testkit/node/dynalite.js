// dynalite on 127.0.0.1, in memory, on a port the OS picks; prints {"port": N} once listening.
// Tables are ACTIVE at once (no 500 ms CREATING state). The server ends when its stdin closes,
// so it never outlives the Python process that started it.
'use strict'
const dynalite = require('dynalite')

const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 })
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n')
})
process.stdin.on('end', () => process.exit(0))
process.stdin.on('close', () => process.exit(0))
process.stdin.resume()
