# Godot as the server: a TCP_Server on 127.0.0.1:<port> (first user argument after --)
# takes one connection from trionet's StreamPeerTCP and runs the exchange.  It prints
# LISTENING once it listens and exits 0 on success.
extends SceneTree


func _init():
	var args = OS.get_cmdline_args()
	var port = int(args[args.size() - 1])
	var server = TCP_Server.new()
	if server.listen(port, "127.0.0.1") != OK:
		printerr("listen failed")
		quit(2)
		return
	print("LISTENING")
	var deadline = OS.get_ticks_msec() + 10000
	while not server.is_connection_available():
		if OS.get_ticks_msec() > deadline:
			printerr("no connection came")
			quit(3)
			return
		OS.delay_msec(2)
	var peer = server.take_connection()
	var failure = load("res://exchange.gd").new().run(peer)
	peer.disconnect_from_host()
	server.stop()
	if failure != "":
		printerr(failure)
		quit(5)
		return
	print("DONE")
	quit(0)
