#!/usr/bin/python3
"""An independent reader of TensorBoard event files, for peftbench's tests.

Standard library only (Debian's python3 has no protobuf module): its own
CRC32C, its own TFRecord framing with both masked CRCs checked, its own
protobuf wire-format decoder, and the field numbers of tensorflow.Event,
Summary, SummaryMetadata, TensorProto and TensorBoard's HParamsPluginData
written out here from the .proto files, not from the Go writer.

Usage: tfevents_read.py LOGDIR  -> JSON on stdout:
  {"runs": {"<run dir relative to LOGDIR>": {
      "files": [name], "file_version": "...",
      "scalars": [[tag, step, "<float.hex of the float32>", wall_hex]],
      "start": {"hparams": {name: [kind, value]}, "group": ..., "start_time": hex},
      "end": {"status": n, "end_time": hex},
      "experiment": {...}, "texts": {tag: text}, "null_tensors": n}}}
Doubles are float.hex() strings so that nothing is lost on the way.
Exits 1 with a message on any framing, CRC or parse error.
"""
import json
import os
import struct
import sys


# --- CRC32C (Castagnoli), reflected polynomial 0x82F63B78 ------------------

def _crc_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value


class ReadError(Exception):
    pass


def records(path):
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    n = 0
    while pos < len(data):
        if len(data) - pos < 12:
            raise ReadError("%s: record %d: truncated header" % (path, n))
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (len_crc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        if masked(header) != len_crc:
            raise ReadError("%s: record %d: length CRC mismatch" % (path, n))
        start = pos + 12
        end = start + length
        if end + 4 > len(data):
            raise ReadError("%s: record %d: truncated payload" % (path, n))
        payload = data[start:end]
        (data_crc,) = struct.unpack("<I", data[end:end + 4])
        if masked(payload) != data_crc:
            raise ReadError("%s: record %d: payload CRC mismatch" % (path, n))
        yield payload
        pos = end + 4
        n += 1


# --- protobuf wire format --------------------------------------------------

def varint(buf, pos):
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise ReadError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ReadError("varint too long")


def fields(buf):
    """Yields (field number, wire type, value): an int for varints, bytes
    for fixed32/fixed64/length-delimited."""
    pos = 0
    while pos < len(buf):
        key, pos = varint(buf, pos)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, pos = varint(buf, pos)
        elif wt == 1:
            v, pos = buf[pos:pos + 8], pos + 8
        elif wt == 5:
            v, pos = buf[pos:pos + 4], pos + 4
        elif wt == 2:
            n, pos = varint(buf, pos)
            v, pos = buf[pos:pos + n], pos + n
        else:
            raise ReadError("wire type %d" % wt)
        if pos > len(buf):
            raise ReadError("truncated field %d" % num)
        yield num, wt, v


def double(b):
    return struct.unpack("<d", b)[0]


def float32(b):
    return struct.unpack("<f", b)[0]


def int64(v):
    return v - (1 << 64) if v >= 1 << 63 else v


# --- google.protobuf.Value / ListValue -------------------------------------

def pvalue(buf):
    out = None
    for num, _, v in fields(buf):
        if num == 1:
            out = ["null", None]
        elif num == 2:
            out = ["number", double(v).hex()]
        elif num == 3:
            out = ["string", v.decode("utf-8")]
        elif num == 4:
            out = ["bool", bool(v)]
        else:
            out = ["other", num]
    return out


def plist(buf):
    return [pvalue(v) for num, _, v in fields(buf) if num == 1]


# --- hparams plugin (plugin_data.proto, api.proto) -------------------------

def session_start(buf):
    out = {"hparams": {}, "group": "", "start_time": 0.0.hex()}
    for num, _, v in fields(buf):
        if num == 1:  # map<string, Value> entry
            key, val = "", None
            for n2, _, v2 in fields(v):
                if n2 == 1:
                    key = v2.decode("utf-8")
                elif n2 == 2:
                    val = pvalue(v2)
            if key in out["hparams"]:
                raise ReadError("hparam %r twice" % key)
            out["hparams"][key] = val
        elif num == 4:
            out["group"] = v.decode("utf-8")
        elif num == 5:
            out["start_time"] = double(v).hex()
    return out


def session_end(buf):
    out = {"status": 0, "end_time": 0.0.hex()}
    for num, _, v in fields(buf):
        if num == 1:
            out["status"] = v
        elif num == 2:
            out["end_time"] = double(v).hex()
    return out


def experiment(buf):
    out = {"hparam_infos": [], "metric_infos": [], "time_created": 0.0.hex()}
    for num, _, v in fields(buf):
        if num == 3:
            out["time_created"] = double(v).hex()
        elif num == 4:
            info = {"name": "", "type": 0, "discrete": None, "interval": None, "differs": False}
            for n2, _, v2 in fields(v):
                if n2 == 1:
                    info["name"] = v2.decode("utf-8")
                elif n2 == 4:
                    info["type"] = v2
                elif n2 == 5:
                    info["discrete"] = plist(v2)
                elif n2 == 6:
                    lo = hi = 0.0
                    for n3, _, v3 in fields(v2):
                        if n3 == 1:
                            lo = double(v3)
                        elif n3 == 2:
                            hi = double(v3)
                    info["interval"] = [lo.hex(), hi.hex()]
                elif n2 == 7:
                    info["differs"] = bool(v2)
            out["hparam_infos"].append(info)
        elif num == 5:
            group, tag = "", ""
            for n2, _, v2 in fields(v):
                if n2 == 1:
                    for n3, _, v3 in fields(v2):
                        if n3 == 1:
                            group = v3.decode("utf-8")
                        elif n3 == 2:
                            tag = v3.decode("utf-8")
            out["metric_infos"].append([group, tag])
    return out


def plugin_data(metadata):
    """SummaryMetadata -> (plugin_name, content)."""
    name, content = "", b""
    for num, _, v in fields(metadata):
        if num == 1:
            for n2, _, v2 in fields(v):
                if n2 == 1:
                    name = v2.decode("utf-8")
                elif n2 == 2:
                    content = v2
    return name, content


def tensor(buf):
    """TensorProto -> (dtype, dims, string_vals, tensor_content)."""
    dtype, dims, strings, content = 0, [], [], b""
    for num, _, v in fields(buf):
        if num == 1:
            dtype = v
        elif num == 2:
            for n2, _, v2 in fields(v):
                if n2 == 2:
                    size = 0
                    for n3, _, v3 in fields(v2):
                        if n3 == 1:
                            size = int64(v3)
                    dims.append(size)
        elif num == 4:
            content = v
        elif num == 8:
            strings.append(v.decode("utf-8"))
    return dtype, dims, strings, content


# --- events ----------------------------------------------------------------

def read_run(path, run):
    for i, payload in enumerate(records(path)):
        wall, step, version, summ = 0.0, 0, None, None
        for num, _, v in fields(payload):
            if num == 1:
                wall = double(v)
            elif num == 2:
                step = int64(v)
            elif num == 3:
                version = v.decode("utf-8")
            elif num == 5:
                summ = v
        if i == 0:
            if version is None:
                raise ReadError("%s: first event has no file_version" % path)
            run["file_version"] = version
            continue
        if version is not None:
            raise ReadError("%s: file_version in event %d" % (path, i))
        if summ is None:
            continue
        for num, _, value in fields(summ):
            if num != 1:
                continue
            tag, simple, meta, tens = None, None, None, None
            for n2, _, v2 in fields(value):
                if n2 == 1:
                    tag = v2.decode("utf-8")
                elif n2 == 2:
                    simple = float32(v2)
                elif n2 == 8:
                    tens = v2
                elif n2 == 9:
                    meta = v2
            if simple is not None:
                run["scalars"].append([tag, step, simple.hex(), wall.hex()])
                continue
            if meta is None:
                raise ReadError("%s: value %r has neither simple_value nor metadata" % (path, tag))
            plugin, content = plugin_data(meta)
            if plugin == "hparams":
                if tens is None:
                    raise ReadError("%s: hparams value %r without its tensor" % (path, tag))
                dtype, dims, _, tc = tensor(tens)
                if dtype != 1 or dims != [0] or tc:
                    raise ReadError("%s: hparams tensor is not the empty DT_FLOAT [0]" % path)
                run["null_tensors"] += 1
                for n3, _, v3 in fields(content):
                    if n3 == 1 and v3 != 0:
                        raise ReadError("%s: plugin data version %d" % (path, v3))
                    if n3 == 2:
                        if tag != "_hparams_/experiment":
                            raise ReadError("%s: experiment under tag %r" % (path, tag))
                        run["experiment"] = experiment(v3)
                    elif n3 == 3:
                        if tag != "_hparams_/session_start_info":
                            raise ReadError("%s: session start under tag %r" % (path, tag))
                        run["start"] = session_start(v3)
                    elif n3 == 4:
                        if tag != "_hparams_/session_end_info":
                            raise ReadError("%s: session end under tag %r" % (path, tag))
                        run["end"] = session_end(v3)
            elif plugin == "text":
                dtype, dims, strings, _ = tensor(tens or b"")
                if dtype != 7 or dims or len(strings) != 1:
                    raise ReadError("%s: text %r is not a scalar DT_STRING" % (path, tag))
                run["texts"][tag] = strings[0]
            else:
                raise ReadError("%s: unknown plugin %r" % (path, plugin))


def main():
    logdir = sys.argv[1]
    runs = {}
    for dirpath, _, files in sorted(os.walk(logdir)):
        events = sorted(f for f in files if f.startswith("events.out.tfevents."))
        if not events:
            continue
        rel = os.path.relpath(dirpath, logdir).replace(os.sep, "/")
        run = {"files": events, "file_version": None, "scalars": [], "start": None,
               "end": None, "experiment": None, "texts": {}, "null_tensors": 0}
        for name in events:
            read_run(os.path.join(dirpath, name), run)
        runs[rel] = run
    json.dump({"runs": runs}, sys.stdout, sort_keys=True)


if __name__ == "__main__":
    try:
        main()
    except ReadError as e:
        print("tfevents_read: %s" % e, file=sys.stderr)
        sys.exit(1)
