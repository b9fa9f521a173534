# Godot as the client: connects to trionet's TCPServer on 127.0.0.1:<port> (first user
# argument after --) and runs the exchange.  Exit code 0 on success.
extends SceneTree


func _init():
	var args = OS.get_cmdline_args()
	var port = int(args[args.size() - 1])
	var peer = StreamPeerTCP.new()
	if peer.connect_to_host("127.0.0.1", port) != OK:
		printerr("connect_to_host failed")
		quit(2)
		return
	var deadline = OS.get_ticks_msec() + 10000
	while peer.get_status() == StreamPeerTCP.STATUS_CONNECTING:
		if OS.get_ticks_msec() > deadline:
			printerr("connect timed out")
			quit(3)
			return
		OS.delay_msec(2)
	if peer.get_status() != StreamPeerTCP.STATUS_CONNECTED:
		printerr("connect failed: status %d" % peer.get_status())
		quit(4)
		return
	var failure = load("res://exchange.gd").new().run(peer)
	peer.disconnect_from_host()
	if failure != "":
		printerr(failure)
		quit(5)
		return
	print("DONE")
	quit(0)
