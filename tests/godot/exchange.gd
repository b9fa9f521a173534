# The exchange both test peers run over a connected StreamPeerTCP (Godot 3.2 GDScript).
#
# 1. trionet sends a u32 length then the value sequence; we send back its hex, as read.
# 2. trionet sends the sequence again; we read it with the typed getters and reply "ok"
#    or what differed.
# 3. we write the sequence with Godot's typed puts (trionet checks the exact bytes);
# 4. and once more (trionet checks the values with its typed getters).
extends Reference

const DOUBLE_BIG = 1e100


func put_sequence(peer):
	peer.put_u8(200)
	peer.put_u8(300)
	peer.put_8(-100)
	peer.put_8(200)
	peer.put_u16(60000)
	peer.put_u16(70000)
	peer.put_16(-30000)
	peer.put_u32(4000000000)
	peer.put_32(-2000000000)
	peer.put_u64(9000000000000000000)
	peer.put_64(-9000000000000000000)
	peer.put_float(1.5)
	peer.put_double(0.1)
	peer.big_endian = true
	peer.put_u16(258)
	peer.put_32(-2)
	peer.put_float(-0.25)
	peer.put_double(DOUBLE_BIG)
	peer.big_endian = false
	peer.put_string("hello")
	peer.put_utf8_string("héllo ✓")
	peer.put_var(null)
	peer.put_var(true)
	peer.put_var(7)
	peer.put_var(-7)
	peer.put_var(1099511627776)
	peer.put_var(1.5)
	peer.put_var(0.1)
	peer.put_var("hi")


func check(problems, what, got, expected):
	if typeof(got) != typeof(expected) or got != expected:
		problems.append("%s: got %s (type %d)" % [what, str(got), typeof(got)])


func read_sequence(peer):
	var p = []
	check(p, "u8", peer.get_u8(), 200)
	check(p, "u8 truncated", peer.get_u8(), 44)
	check(p, "8", peer.get_8(), -100)
	check(p, "8 truncated", peer.get_8(), -56)
	check(p, "u16", peer.get_u16(), 60000)
	check(p, "u16 truncated", peer.get_u16(), 4464)
	check(p, "16", peer.get_16(), -30000)
	check(p, "u32", peer.get_u32(), 4000000000)
	check(p, "32", peer.get_32(), -2000000000)
	check(p, "u64", peer.get_u64(), 9000000000000000000)
	check(p, "64", peer.get_64(), -9000000000000000000)
	check(p, "float", peer.get_float(), 1.5)
	check(p, "double", peer.get_double(), 0.1)
	peer.big_endian = true
	check(p, "be u16", peer.get_u16(), 258)
	check(p, "be 32", peer.get_32(), -2)
	check(p, "be float", peer.get_float(), -0.25)
	check(p, "be double", peer.get_double(), DOUBLE_BIG)
	peer.big_endian = false
	check(p, "string", peer.get_string(), "hello")
	check(p, "utf8", peer.get_utf8_string(), "héllo ✓")
	check(p, "var nil", peer.get_var(), null)
	check(p, "var bool", peer.get_var(), true)
	check(p, "var int", peer.get_var(), 7)
	check(p, "var negative int", peer.get_var(), -7)
	check(p, "var int64", peer.get_var(), 1099511627776)
	check(p, "var float32", peer.get_var(), 1.5)
	check(p, "var float64", peer.get_var(), 0.1)
	check(p, "var string", peer.get_var(), "hi")
	return p


func run(peer):
	var length = peer.get_u32()
	var got = peer.get_data(length)
	if got[0] != OK:
		return "phase 1: get_data failed with %d" % got[0]
	peer.put_utf8_string(got[1].hex_encode())
	var problems = read_sequence(peer)
	if problems.empty():
		peer.put_utf8_string("ok")
	else:
		peer.put_utf8_string(PoolStringArray(problems).join("; "))
	put_sequence(peer)
	put_sequence(peer)
	return ""
