# Usage: start `redis-server --port 16391 --save "" --appendonly no`, then
#   python3 src/resp/testdata/gen_redis7_requests.py SEED CASES > src/resp/testdata/redis7_requests.tsv
# Generates src/resp/testdata/redis7_requests.tsv: random (mutated) request pipelines sent
# to a real redis-server 7; records the RPUSH commands it executed (seen via MONITOR) and
# its protocol error text, if any.
import socket, time, random, re, sys
PORT=16391
rnd=random.Random(int(sys.argv[1]) if len(sys.argv)>1 else 7)
def conn():
    s=socket.create_connection(("127.0.0.1",PORT)); return s
mon=conn(); mon.sendall(b"MONITOR\r\n"); mon.settimeout(2)
monbuf=b""
def monlines_until(marker):
    global monbuf
    out=[]
    while True:
        while b"\r\n" not in monbuf:
            monbuf+=mon.recv(65536)
        line,monbuf=monbuf.split(b"\r\n",1)
        if marker in line: return out
        out.append(line)
def unrepr(s):
    # parse "..." args from MONITOR line (sdscatrepr format)
    args=[]; i=0
    while i<len(s):
        if s[i:i+1]==b'"':
            i+=1; cur=bytearray()
            while s[i:i+1]!=b'"':
                c=s[i:i+1]
                if c==b'\\':
                    n=s[i+1:i+2]
                    if n==b'x': cur.append(int(s[i+2:i+4],16)); i+=4; continue
                    cur.extend({b'n':b'\n',b'r':b'\r',b't':b'\t',b'a':b'\a',b'b':b'\b'}.get(n,n)); i+=2; continue
                cur.extend(c); i+=1
            args.append(bytes(cur)); i+=1
        else: i+=1
    return args
ARGCH=b"ab\"' \\x\r\n\t*$0123456789-"
def rand_arg():
    k=rnd.random()
    if k<0.5: return bytes(rnd.choice(b"abcxyz") for _ in range(rnd.randint(1,5)))
    return bytes(rnd.choice(ARGCH+bytes(range(1,256))) for _ in range(rnd.randint(0,6))).replace(b"\x00",b"")
def array_cmd(args):
    out=b"*%d\r\n"%len(args)
    for a in args: out+=b"$%d\r\n"%len(a)+a+b"\r\n"
    return out
def inline_cmd(args):
    parts=[]
    for a in args:
        if a and all(chr(c).isalnum() for c in a): parts.append(a)
        else: parts.append(b'"'+b"".join(bytes([c]) if chr(c).isalnum() else b"\\x%02x"%c for c in a)+b'"')
    return b" ".join(parts)+rnd.choice([b"\r\n",b"\n"])
def mutate(b):
    b=bytearray(b)
    for _ in range(rnd.randint(0,3)):
        if not b: break
        i=rnd.randrange(len(b)); op=rnd.random()
        ch=rnd.choice(b"\r\n*$0123456789-+ \"'\\xa")
        if op<0.4: b[i]=ch
        elif op<0.7: b.insert(i,ch)
        else: del b[i]
    return bytes(b)
rows=[]
ncases=int(sys.argv[2]) if len(sys.argv)>2 else 150
for case in range(ncases):
    pipe=b""
    for _ in range(rnd.randint(1,4)):
        args=[b"RPUSH",b"L"]+[rand_arg() for _ in range(rnd.randint(1,3))]
        pipe+= array_cmd(args) if rnd.random()<0.6 else inline_cmd(args)
    if rnd.random()<0.8: pipe=mutate(pipe)
    pipe=pipe.replace(b"\x00",b"")
    c=conn(); c.sendall(pipe); c.settimeout(0.15); rep=b""
    try:
        while True:
            d=c.recv(65536)
            if not d: break
            rep+=d
    except socket.timeout: pass
    port=c.getsockname()[1]; c.close()
    d=conn(); marker=b"marker-%d"%case; d.sendall(b"PING "+marker+b"\r\nDEL L\r\n"); d.recv(100); d.close()
    cmds=[]
    for line in monlines_until(marker):
        if b":%d]"%port not in line: continue
        a=unrepr(line.split(b"] ",1)[1])
        if a and a[0].upper()==b"RPUSH" and len(a)>=3: cmds.append(a)
    m=re.search(rb"-ERR Protocol error: ([^\r]*)\r\n",rep)
    err=m.group(1).decode('latin-1') if m else ""
    rows.append("%s\t%s\t%s"%(pipe.hex(), ";".join(",".join(x.hex() for x in a) for a in cmds), err))
sys.stdout.write("# input-hex<TAB>RPUSH commands redis-server 7 executed (args hex, ','-separated; ';' between)<TAB>protocol error text\n")
sys.stdout.write("\n".join(rows)+"\n")
