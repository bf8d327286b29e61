"""The CBOR subset of the nestjs-qt-transport protocol, for PyQt5 (which wraps no QCborValue).

Covers what docs/protocol.md allows: maps with text keys, arrays, text and byte strings,
integers, floats, booleans and null; definite lengths only, no tags. C++ programs use Qt's
own QCborValue instead.
"""
import struct


def _head(major, n):
    """The initial byte(s) of an item: major type and its length or value, shortest form."""
    if n < 24:
        return bytes([major << 5 | n])
    for info, fmt in ((24, '>B'), (25, '>H'), (26, '>I'), (27, '>Q')):
        if n < 1 << (8 * struct.calcsize(fmt)):
            return bytes([major << 5 | info]) + struct.pack(fmt, n)
    raise ValueError(f'CBOR: integer {n} does not fit in 64 bits')


def dumps(value):
    """Encodes dicts (text keys), lists, str, bytes, int, float, bool and None."""
    if value is None:
        return b'\xf6'
    if isinstance(value, bool):
        return b'\xf5' if value else b'\xf4'
    if isinstance(value, int):
        return _head(0, value) if value >= 0 else _head(1, -1 - value)
    if isinstance(value, float):
        return b'\xfb' + struct.pack('>d', value)
    if isinstance(value, str):
        data = value.encode()
        return _head(3, len(data)) + data
    if isinstance(value, (bytes, bytearray)):
        return _head(2, len(value)) + bytes(value)
    if isinstance(value, (list, tuple)):
        return _head(4, len(value)) + b''.join(dumps(v) for v in value)
    if isinstance(value, dict):
        return _head(5, len(value)) + b''.join(dumps(str(k)) + dumps(v) for k, v in value.items())
    raise TypeError(f'CBOR: cannot encode {type(value).__name__}')


def loads(data):
    """Decodes one item; raises ValueError on anything outside the subset or trailing bytes."""
    value, end = _item(bytes(data), 0)
    if end != len(data):
        raise ValueError(f'CBOR: {len(data) - end} bytes after the value')
    return value


def _item(data, pos):
    if pos >= len(data):
        raise ValueError('CBOR: truncated')
    major, info = data[pos] >> 5, data[pos] & 0x1F
    pos += 1
    if major == 7:
        simple = {20: False, 21: True, 22: None, 23: None}
        if info in simple:
            return simple[info], pos
        for size, fmt in ((25, '>e'), (26, '>f'), (27, '>d')):
            if info == size:
                end = pos + struct.calcsize(fmt)
                return struct.unpack(fmt, data[pos:end])[0], end
        raise ValueError(f'CBOR: simple value {info}')
    if info < 24:
        n = info
    elif info <= 27:
        fmt = {24: '>B', 25: '>H', 26: '>I', 27: '>Q'}[info]
        end = pos + struct.calcsize(fmt)
        if end > len(data):
            raise ValueError('CBOR: truncated')
        n, pos = struct.unpack(fmt, data[pos:end])[0], end
    else:
        raise ValueError('CBOR: indefinite lengths are not part of the protocol')
    if major == 0:
        return n, pos
    if major == 1:
        return -1 - n, pos
    if major in (2, 3):
        if pos + n > len(data):
            raise ValueError('CBOR: truncated')
        chunk = data[pos:pos + n]
        return (chunk if major == 2 else chunk.decode()), pos + n
    if major == 4:
        items = []
        for _ in range(n):
            value, pos = _item(data, pos)
            items.append(value)
        return items, pos
    if major == 5:
        result = {}
        for _ in range(n):
            key, pos = _item(data, pos)
            if not isinstance(key, str):
                raise ValueError('CBOR: a map key that is not text')
            result[key], pos = _item(data, pos)
        return result, pos
    raise ValueError('CBOR: tags are not part of the protocol')
