'use strict';
// The peer a team would otherwise pick: Socket.IO 4 on Node, rooms with
// io.to(room).emit. A client emits "join" (room, ack) and then "msg"
// (room, text); every member of the room, sender included, gets "m" (room, text).
// Run: node bench/servers/socketio_server.js PORT; prints "listening" when ready.

const http = require('http');
const { Server } = require('socket.io');

const port = Number(process.argv[2]);
const httpServer = http.createServer();
const io = new Server(httpServer, {
  transports: ['websocket'], // the load generator speaks the websocket transport directly
  serveClient: false,
  perMessageDeflate: false, // Socket.IO 4's default, stated for clarity
});

io.on('connection', (socket) => {
  socket.on('join', (room, ack) => {
    socket.join(room);
    if (typeof ack === 'function') ack();
  });
  socket.on('msg', (room, text) => {
    io.to(room).emit('m', room, text);
  });
});

httpServer.listen({ host: '127.0.0.1', port, backlog: 1024 }, () => {
  process.stdout.write('listening\n');
});

const stop = () => {
  io.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
