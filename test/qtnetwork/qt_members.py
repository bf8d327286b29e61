"""Lists the members of Qt's network classes, as the PyQt bindings see them, for
test/qtnetwork/member-coverage.spec.ts.

Usage: /usr/bin/python3 qt_members.py 5|6 CLASS...

Prints one JSON object: {"qt": Qt version, "pyqt": PyQt version, "classes": {name: [member,
...]}, "unknown": [classes this Qt does not have]}. A class's members are the names in
vars(cls) that do not start with '__' (what the class itself declares; inherited members
belong to the class that declares them). Each member is {"name", "kind"} with kind:

  method  a method (instance or static; PyQt does not tell them apart in vars())
  signal  a signal (pyqtSignal). Where C++ has a method of the same name (Qt 5.15's
          QAbstractSocket::error() getter beside its error(SocketError) signal), vars() holds
          only the signal; calling the bound signal of an instance then reaches the method, so
          the method is listed too
  enum    an enum type (PyQt5 enumtype, PyQt6 enum.Enum / enum.Flag subclass)
  flags   a QFlags typedef (PyQt5 only: OpenMode, BindMode, ...), with "enum": the name of
          the enum it combines
  value   an enumerator that PyQt5 puts on the class (QAbstractSocket.ConnectedState), with
          "enum": its enum's name and "value": its number
  other   anything else, with "type": its Python type's name (reported, never expected)
"""
import enum
import importlib
import json
import os
import sys


def kind_of(cls, name, value):
    t = type(value)
    meta = type(t)
    if t.__name__ == 'pyqtSignal':
        return {'kind': 'signal'}
    if t.__name__ in ('methoddescriptor', 'builtin_function_or_method', 'function'):
        return {'kind': 'method'}
    if isinstance(value, type):
        if issubclass(value, enum.Enum) or t.__name__ == 'enumtype':
            return {'kind': 'enum'}
        if t.__name__ == 'wrappertype':
            # A PyQt5 QFlags wrapper. Its constructor takes any int, so it cannot tell its
            # enum; Qt names the pair alike (OpenMode/OpenModeFlag, BindMode/BindFlag,
            # PauseModes/PauseMode): take the class's enum with the longest common prefix.
            enums = [n for n, v in vars(cls).items()
                     if isinstance(v, type) and type(v).__name__ == 'enumtype']
            best = max(enums, key=lambda n: len(os.path.commonprefix([n, name])), default=None)
            return {'kind': 'flags', 'enum': best}
    if meta.__name__ == 'enumtype':
        return {'kind': 'value', 'enum': t.__name__, 'value': int(value)}
    return {'kind': 'other', 'type': t.__name__}


def an_instance(cls):
    """An instance of `cls` to probe, or None if it cannot be made without arguments."""
    attempts = [()]
    if hasattr(cls, 'TcpSocket'):
        attempts.append((cls.TcpSocket, None))  # QAbstractSocket(SocketType, QObject *)
    for args in attempts:
        try:
            return cls(*args)
        except TypeError:
            continue
    return None


def also_a_method(instance, name):
    """True if the signal `name` of `instance` shares its name with a method."""
    if instance is None:
        return False
    try:
        getattr(instance, name)()
    except TypeError as e:
        return 'not callable' not in str(e)
    return True


def main(argv):
    major = argv[1]
    core = importlib.import_module(f'PyQt{major}.QtCore')
    network = importlib.import_module(f'PyQt{major}.QtNetwork')
    classes = {}
    unknown = []
    for class_name in argv[2:]:
        cls = getattr(core, class_name, None) or getattr(network, class_name, None)
        if cls is None:
            unknown.append(class_name)
            continue
        members = []
        instance = an_instance(cls)
        for name, value in sorted(vars(cls).items()):
            if name.startswith('__'):
                continue
            member = {'name': name, **kind_of(cls, name, value)}
            members.append(member)
            if member['kind'] == 'signal' and also_a_method(instance, name):
                members.append({'name': name, 'kind': 'method'})
        classes[class_name] = members
    json.dump(
        {'qt': core.QT_VERSION_STR, 'pyqt': core.PYQT_VERSION_STR, 'classes': classes,
         'unknown': unknown},
        sys.stdout,
    )
    print()
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
