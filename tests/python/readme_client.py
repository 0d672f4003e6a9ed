"""The README from Python's grpcio, against a running network (started by .ci/python-client-check).

    readme_client.py status  --pki DIR --other-pki DIR --gateway HOST:PORT
        Every row of the README's table "What a refused call looks like": the situation is
        provoked and the code grpcio reports must be the row's.
    readme_client.py example --workdir DIR --gateway HOST:PORT --expect released|refused
        The README's Python example, as written there (only the gateway address replaced), run
        in DIR (which holds pki/ and the generated psonet/v1 modules). A released row prints its
        count and rate; a withheld row prints why instead of figures.
        With a facility stopped, four of five cannot open a network sum: the example prints the
        refusal (UNAVAILABLE, naming the facility) and exits non-zero.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

import grpc

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")
BENCHMARK = "/psonet.v1.BenchmarkService/NetworkBenchmark"


def readme_text():
    with open(README, encoding="utf-8") as f:
        return f.read()


def status_rows():
    """(what the caller sends, code name) for every row of the README's status table."""
    lines = readme_text().splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("| the caller sends | code |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows.append((cells[0], cells[1].strip("`")))
    if len(rows) < 8:
        sys.exit(f"the README's status table has {len(rows)} rows: {rows}")
    return rows


def read(path):
    with open(path, "rb") as f:
        return f.read()


def channel(gateway, ca, cert=None, key=None):
    creds = grpc.ssl_channel_credentials(
        root_certificates=read(ca),
        private_key=read(key) if key else None,
        certificate_chain=read(cert) if cert else None,
    )
    return grpc.secure_channel(gateway, creds)


def identity_channel(gateway, ca, identity_dir):
    return channel(
        gateway,
        ca,
        os.path.join(identity_dir, "cert.pem"),
        os.path.join(identity_dir, "key.pem"),
    )


def raw_call(chan, method, payload, timeout=10):
    """Sends `payload` bytes as the request of `method`; returns the gRPC code."""
    call = chan.unary_unary(method, request_serializer=None, response_deserializer=None)
    try:
        call(payload, timeout=timeout)
        return grpc.StatusCode.OK, None
    except grpc.RpcError as e:
        return e.code(), e


def nameless_identity(pki, out):
    """A client certificate of the network's CA without a URI SAN: it names no principal."""
    key, csr, cert = (os.path.join(out, n) for n in ("key.pem", "req.csr", "cert.pem"))
    ext = os.path.join(out, "ext.cnf")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"
                "subjectAltName=DNS:client.example\n")
    run = lambda *args: subprocess.run(args, check=True, capture_output=True)
    run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-out", key)
    run("openssl", "req", "-new", "-key", key, "-subj", "/CN=nobody in particular", "-out", csr)
    run("openssl", "x509", "-req", "-in", csr, "-CA", os.path.join(pki, "ca.pem"),
        "-CAkey", os.path.join(pki, "ca.key"), "-CAcreateserial", "-days", "30",
        "-extfile", ext, "-out", cert)
    return out


def benchmark_request(**fields):
    from psonet.v1 import benchmark_pb2
    return benchmark_pb2.NetworkBenchmarkRequest(**fields).SerializeToString()


def check_status(args):
    from psonet.v1 import common_pb2
    pki, gateway = args.pki, args.gateway
    ca = os.path.join(pki, "ca.pem")
    partner = identity_channel(gateway, ca, os.path.join(pki, "partner"))
    scratch = tempfile.mkdtemp()
    valid = benchmark_request(month_from="2026-01", month_to="2026-01")

    def no_certificate():
        return raw_call(channel(gateway, ca), BENCHMARK, valid)

    def other_ca():
        return raw_call(identity_channel(gateway, ca, os.path.join(args.other_pki, "partner")),
                        BENCHMARK, valid)

    def no_principal():
        dir_ = nameless_identity(pki, scratch)
        return raw_call(identity_channel(gateway, ca, dir_), BENCHMARK, valid)

    def wrong_principal():
        return raw_call(identity_channel(gateway, ca, os.path.join(pki, "gateway")),
                        BENCHMARK, valid)

    def wrong_method():
        return raw_call(partner, "/psonet.v1.ReportingService/GetEvent", b"")

    def bad_field():
        fall = common_pb2.EventCategory.Value("EVENT_CATEGORY_FALL")
        code, error = raw_call(partner, BENCHMARK, benchmark_request(
            month_from="last spring", month_to="2026-01", categories=[fall] * 1000))
        trailers = dict(error.trailing_metadata() or ()) if error else {}
        if "grpc-status-details-bin" not in trailers:
            sys.exit(f"INVALID_ARGUMENT without its BadRequest details: {error}")
        return code, error

    def undecodable():
        return raw_call(partner, BENCHMARK, b"\xff" * 64)

    def oversize():
        return raw_call(partner, BENCHMARK, b"\x00" * (5 << 20))

    probes = {
        "no client certificate": no_certificate,
        "a certificate another CA issued": other_ca,
        "a certificate of the network's CA naming no principal": no_principal,
        "a principal the listener does not serve": wrong_principal,
        "a method the listener does not serve": wrong_method,
        "a request that breaks a field rule": bad_field,
        "bytes that do not decode as the request message": undecodable,
        "a message over 4 MB": oversize,
    }
    failed = []
    for row, code in status_rows():
        probe = probes.get(row)
        if probe is None:
            failed.append(f"README row {row!r} has no probe in {__file__}")
            continue
        seen, error = probe()
        detail = f" ({error.details()[:120]!r})" if error else ""
        print(f"{row}: README {code}, grpcio {seen.name}{detail}")
        if seen.name != code:
            failed.append(f"{row}: README says {code}, grpcio saw {seen.name}{detail}")
    if failed:
        sys.exit("\n".join(failed))


def readme_example():
    """The body of the README's `cat > benchmark.py <<'PY'` heredoc."""
    match = re.search(r"cat > benchmark\.py <<'PY'\n(.*?)\nPY\n", readme_text(), re.S)
    if not match:
        sys.exit("no benchmark.py example in the README")
    return match.group(1)


def check_example(args):
    script = readme_example().replace("127.0.0.1:7100", args.gateway)
    path = os.path.join(args.workdir, "benchmark.py")
    with open(path, "w") as f:
        f.write(script)
    out = subprocess.run([sys.executable, path], cwd=args.workdir, capture_output=True,
                         text=True, timeout=120)
    print(out.stdout, end="")
    if args.expect == "refused":
        # Four of five facilities cannot open a network sum: the call is refused, and the
        # example says so with the code and the gateway's reason (naming the missing facility).
        said = out.stderr.strip()
        if out.returncode == 0 or not said.startswith("refused: UNAVAILABLE") \
                or "facility-5" not in said:
            sys.exit(f"with a facility down the example should print the refusal; it printed "
                     f"{out.stdout!r} and {said!r} (exit {out.returncode})")
        print(said)
        return
    if out.returncode != 0:
        sys.exit(f"the README's example failed:\n{out.stderr}")
    rows = [l for l in out.stdout.splitlines() if re.match(r"\d{4}-\d{2} ", l)]
    if not rows:
        sys.exit("the README's example printed no rows")
    if args.expect == "released" and not any(re.search(r" \d+ \d+\.\d+$", l) for l in rows):
        sys.exit(f"no row printed a count and a rate: {rows}")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    status = sub.add_parser("status")
    status.add_argument("--pki", required=True)
    status.add_argument("--other-pki", required=True)
    status.add_argument("--gateway", required=True)
    example = sub.add_parser("example")
    example.add_argument("--workdir", required=True)
    example.add_argument("--gateway", required=True)
    example.add_argument("--expect", choices=["released", "refused"], required=True)
    args = parser.parse_args()
    if args.command == "status":
        check_status(args)
    else:
        check_example(args)


if __name__ == "__main__":
    main()
