// The fan-out peer: a Socket.IO 4 server answering the same trigger as bench/rawasgi.py.
//
//   node bench/socketio/server.js PORT
//
// POST /fire?id=<n>&t0=<time>&size=<bytes> builds one event carrying the bench marker,
// padded to `size`, and sends it to every connected socket with io.emit (Socket.IO encodes
// it once for all of them). GET /count answers the number of connected sockets.
"use strict";

const http = require("http");
const { Server } = require("socket.io");

const port = Number(process.argv[2] || 3000);

const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://127.0.0.1");
  if (url.pathname === "/fire") {
    const id = Number(url.searchParams.get("id"));
    const t0 = url.searchParams.get("t0");
    const size = Number(url.searchParams.get("size") || 2000);
    const event = { type: "new_message", body: `bench#${id}#${t0}#`, pad: "" };
    // The frame on the wire is 42["message",{...}]: pad it to `size` bytes in all.
    const bare = JSON.stringify(["message", event]).length + 2;
    event.pad = "x".repeat(Math.max(0, size - bare));
    io.emit("message", event);
    res.end(String(io.engine.clientsCount));
  } else if (url.pathname === "/count") {
    res.end(String(io.engine.clientsCount));
  } else {
    res.statusCode = 404;
    res.end();
  }
});

const io = new Server(server, { transports: ["websocket"], serveClient: false });

server.listen(port, "127.0.0.1");
