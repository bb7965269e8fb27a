"""A chat client in the style of the official CloudBase WebSocket sample (Python `websockets`).

Usage: python3 python_sample_client.py URL MESSAGE
Connects, waits for the welcome, sends MESSAGE as a chat and a ping, and prints
every frame it receives as one JSON line until its own chat and the pong are back.
"""
import asyncio
import json
import sys
import time

import websockets


async def main(url: str, message: str) -> None:
    async with websockets.connect(url) as socket:
        welcome = json.loads(await socket.recv())
        print(json.dumps(welcome), flush=True)
        me = welcome["clientId"]
        await socket.send(json.dumps({"type": "chat", "content": message, "timestamp": int(time.time() * 1000)}))
        await socket.send(json.dumps({"type": "ping", "timestamp": int(time.time() * 1000)}))
        got_echo = got_pong = False
        while not (got_echo and got_pong):
            frame = json.loads(await asyncio.wait_for(socket.recv(), timeout=10))
            print(json.dumps(frame), flush=True)
            got_echo = got_echo or (frame["type"] == "chat" and frame["clientId"] == me)
            got_pong = got_pong or frame["type"] == "pong"
        await socket.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
