"""A Godot-style game server: TCPServer, a tick loop, and put_var state updates.

The server polls as a Godot game does every frame: it takes new connections, reads each
player's input (a Variant Dictionary), moves the players, and sends every client the whole
game state with ``put_var``.  Three StreamPeerTCP clients in the same program play for a
few ticks.  Everything listens on 127.0.0.1, port 0.
"""

from __future__ import annotations

import trio

from trionet import Error, StreamPeerTCP, TCPServer, Vector2

TICKS = 5
PLAYERS = 3


async def game_server(server: TCPServer, done: trio.Event) -> None:
    peers: dict[int, StreamPeerTCP] = {}
    positions: dict[int, Vector2] = {}
    tick = 0
    while tick < TICKS:
        while server.is_connection_available():  # new players join
            peer = server.take_connection()
            assert peer is not None
            hello = await peer.get_var()  # {"player": n}
            if not isinstance(hello, dict) or not isinstance(hello.get("player"), int):
                peer.disconnect_from_host()  # not one of ours
                continue
            peers[hello["player"]] = peer
            positions[hello["player"]] = Vector2(0.0, 0.0)
        if len(peers) < PLAYERS:
            await server.wait_connection()
            continue
        for player, peer in peers.items():  # read each player's input for this tick
            command = await peer.get_var()
            if isinstance(command, dict):
                move = command.get("move", Vector2(0.0, 0.0))
                old = positions[player]
                positions[player] = Vector2(old.x + move.x, old.y + move.y)
        tick += 1
        state = {"tick": tick, "players": {str(p): pos for p, pos in positions.items()}}
        for peer in peers.values():  # every client gets the whole state
            await peer.put_var(state)
    print(f"server: sent {TICKS} state updates to {len(peers)} players")
    done.set()


async def player(number: int, port: int) -> None:
    async with StreamPeerTCP() as peer:
        assert peer.connect_to_host("127.0.0.1", port) == Error.OK
        while peer.get_status() == StreamPeerTCP.STATUS_CONNECTING:
            await peer.wait()  # a game would simply poll() again next frame
            peer.poll()
        await peer.put_var({"player": number})
        state: object = None
        for _ in range(TICKS):
            await peer.put_var({"move": Vector2(float(number), 1.0)})
            state = await peer.get_var()
        assert isinstance(state, dict)
        me = state["players"][str(number)]
        print(f"player {number}: tick {state['tick']}, at ({me.x:g}, {me.y:g})")


async def main() -> None:
    with trio.fail_after(10):
        async with TCPServer() as server:
            assert server.listen(0, "127.0.0.1") == Error.OK
            print(f"server: listening on port {server.get_local_port()}")
            done = trio.Event()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(game_server, server, done)
                for number in range(1, PLAYERS + 1):
                    nursery.start_soon(player, number, server.get_local_port())
            await done.wait()
    print("server: closed, every player disconnected")


if __name__ == "__main__":
    trio.run(main)
