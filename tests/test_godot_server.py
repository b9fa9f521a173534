"""TCPServer: listen's return codes, taking peers, stop, and the lifetime of taken peers."""

from __future__ import annotations

import trio

from trionet import Error, StreamPeerTCP, TCPServer

from .conftest import TaskCounter, open_fds

Status = StreamPeerTCP.Status


async def test_listen_take_and_talk() -> None:
    with trio.fail_after(5):
        async with TCPServer() as server:
            assert not server.is_listening()
            assert server.take_connection() is None
            assert server.listen(0, "127.0.0.1") == Error.OK
            assert server.is_listening()
            port = server.get_local_port()
            assert port != 0
            assert not server.is_connection_available()
            client = await trio.open_tcp_stream("127.0.0.1", port)
            await server.wait_connection()
            assert server.is_connection_available()
            peer = server.take_connection()
            assert peer is not None
            assert peer.get_status() == Status.STATUS_CONNECTED
            assert peer.get_connected_host() == "127.0.0.1"
            assert peer.get_connected_port() == client.socket.getsockname()[1]
            assert peer.get_local_port() == port
            await client.send_all(b"\x2a")
            assert await peer.get_u8() == 42
            assert await peer.put_utf8_string("ok") == Error.OK
            assert await client.receive_some() == b"\x02\x00\x00\x00ok"
            assert not server.is_connection_available()
            await client.aclose()


async def test_listen_errors_are_godots() -> None:
    with trio.fail_after(5):
        async with TCPServer() as server, TCPServer() as other:
            assert server.listen(70000) == Error.ERR_INVALID_PARAMETER
            assert server.listen(0, "not an address") == Error.ERR_INVALID_PARAMETER
            assert server.listen(0, "127.0.0.1") == Error.OK
            assert server.listen(0, "127.0.0.1") == Error.ERR_ALREADY_IN_USE
            assert other.listen(server.get_local_port(), "127.0.0.1") == Error.ERR_ALREADY_IN_USE
            assert not other.is_listening()
    assert TCPServer().listen(0) == Error.ERR_UNCONFIGURED


async def test_star_listens_on_every_interface() -> None:
    with trio.fail_after(5):
        async with TCPServer() as server:
            assert server.listen(0) == Error.OK
            client = await trio.open_tcp_stream("127.0.0.1", server.get_local_port())
            await server.wait_connection()
            assert server.take_connection() is not None
            await client.aclose()


async def test_stop_frees_the_port_and_keeps_taken_peers() -> None:
    with trio.fail_after(5):
        async with TCPServer() as server:
            server.listen(0, "127.0.0.1")
            port = server.get_local_port()
            first = await trio.open_tcp_stream("127.0.0.1", port)
            await server.wait_connection()
            peer = server.take_connection()
            assert peer is not None
            server.stop()
            assert not server.is_listening()
            assert server.get_local_port() == 0
            await server.wait_connection()  # returns: the server is stopped
            await first.send_all(b"\x01")
            assert await peer.get_u8() == 1  # the taken peer carries on
            assert server.listen(port, "127.0.0.1") == Error.OK  # the port is free again
            await first.aclose()


async def test_taken_peers_end_with_the_block(task_counter: TaskCounter) -> None:
    with trio.fail_after(5):
        fds = open_fds()
        alive = task_counter.alive
        clients = []
        async with TCPServer() as server:
            server.listen(0, "127.0.0.1")
            for _ in range(3):
                clients.append(await trio.open_tcp_stream("127.0.0.1", server.get_local_port()))
            peers = []
            while len(peers) < 3:
                await server.wait_connection()
                peer = server.take_connection()
                assert peer is not None
                peers.append(peer)
            # one more, accepted but never taken
            clients.append(await trio.open_tcp_stream("127.0.0.1", server.get_local_port()))
            await server.wait_connection()
        assert task_counter.alive == alive
        for client in clients:
            assert await client.receive_some() == b""  # every server side was closed
            await client.aclose()
        assert open_fds() == fds


async def test_async_with_on_a_taken_peer_disconnects_it() -> None:
    with trio.fail_after(5):
        async with TCPServer() as server:
            server.listen(0, "127.0.0.1")
            client = await trio.open_tcp_stream("127.0.0.1", server.get_local_port())
            await server.wait_connection()
            peer = server.take_connection()
            assert peer is not None
            async with peer:
                assert peer.get_status() == Status.STATUS_CONNECTED
            assert peer.get_status() == Status.STATUS_NONE
            assert await client.receive_some() == b""
            await client.aclose()


async def test_streampeer_client_and_server_together() -> None:
    with trio.fail_after(5):
        async with TCPServer() as server, StreamPeerTCP() as client:
            server.listen(0, "127.0.0.1")
            client.connect_to_host("127.0.0.1", server.get_local_port())
            await server.wait_connection()
            taken = server.take_connection()
            assert taken is not None
            client.big_endian = taken.big_endian = True
            await client.put_64(-5)
            await client.put_var({"hp": 3})
            assert await taken.get_64() == -5
            assert await taken.get_var() == {"hp": 3}
