/**
 * Member coverage: every member of Qt's network classes is in the port, or is listed with
 * its reason in docs/qt-differences.md ("Members not in the port"). The member lists come
 * live from real Qt: PyQt5 (Qt 5.15) for QIODevice, QAbstractSocket, QTcpSocket,
 * QTcpServer, QLocalSocket, QLocalServer, QNetworkProxy, QHostAddress, QUdpSocket and
 * QSslSocket; PyQt6 (Qt 6.4) for QSslServer, which Qt 5 does not have
 * (test/qtnetwork/qt_members.py prints them). The Qt 6 members of the other classes are
 * reported, not required.
 *
 * What counts as a class's members: the names PyQt finds in `vars(cls)` (what the class
 * itself declares, so an override counts for the class that re-declares it), without
 * Python's `__dunder__` names. How each kind maps to the port:
 *
 * - method: a function on an instance of the class or a static of it. Protected members
 *   count (they exist at runtime, and TypeScript subclasses can call them); a member the
 *   port declares `private` does not (it is not the API), and is reported as private.
 * - signal: a `Signal` on an instance. A method of the same name is not the signal: Qt
 *   5.15's `error` is both the `error()` getter and the old `error(SocketError)` signal,
 *   and PyQt lists the signal.
 * - enum type (`SocketState`, `OpenModeFlag`): a static object of that name on the class
 *   (`QAbstractSocket.SocketState`).
 * - enumerator: PyQt5 also puts each value of an unscoped C++ enum on the class
 *   (`QAbstractSocket.ConnectedState`); in the port it is reached through its enum
 *   (`QAbstractSocket.SocketState.ConnectedState`) and must have Qt's number. The report
 *   shows them apart from the other members, so that a long enum does not hide a missing
 *   method; the coverage threshold counts them, as they are names in `vars(cls)` too.
 * - QFlags typedef (`OpenMode`, `BindMode`, ...; PyQt5 only): in TypeScript a flags value
 *   is a number made with `|` from the enum's values, so the typedef is a type alias,
 *   exported by lib/qtnetwork/index.ts under the name in FLAGS_TYPES below (Qt's name, or
 *   the prefixed one where the enum itself is exported prefixed, as `LocalServerSocketOption`
 *   is). It has no runtime existence; the TypeScript compiler reads the index's exports.
 *
 * The runtime side uses an instance of the class itself (QIODevice: a minimal subclass;
 * QAbstractSocket: a QTcpSocket, which adds nothing to it); the TypeScript side looks the
 * member up on the class's own type, so a member only a subclass declares does not count.
 *
 * Skipped, with the reason printed, when PyQt5 is not importable; QSslServer and the Qt 6
 * report are left out, with the reason printed, when PyQt6 is not.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import ts from 'typescript';

import * as qt from '../../lib/qtnetwork/index.js';
import { QIODevice, Signal } from '../../lib/qtnetwork/index.js';

/**
 * The share of Qt's members (enumerators included) that must be present in the port; a
 * member documented as absent counts as not present.
 */
const COVERAGE_THRESHOLD = 0.98;

const PYTHON = '/usr/bin/python3';
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const SCRIPT = path.join(here, 'qt_members.py');
const DOCS = path.join(root, 'docs/qt-differences.md');
const INDEX = path.join(root, 'lib/qtnetwork/index.ts');
const DOCS_SECTION = '## Members not in the port';

const QT5_CLASSES = [
  'QIODevice',
  'QAbstractSocket',
  'QTcpSocket',
  'QTcpServer',
  'QLocalSocket',
  'QLocalServer',
  'QNetworkProxy',
  'QHostAddress',
  'QUdpSocket',
  'QSslSocket',
];
const QT6_ONLY_CLASSES = ['QSslServer'];

/** Qt's QFlags typedefs and the TypeScript type the port exports for each. */
const FLAGS_TYPES: Record<string, string> = {
  'QIODevice.OpenMode': 'OpenMode',
  'QAbstractSocket.BindMode': 'BindMode',
  'QAbstractSocket.PauseModes': 'PauseModes',
  'QLocalServer.SocketOptions': 'LocalServerSocketOptions',
  'QNetworkProxy.Capabilities': 'ProxyCapabilities',
  'QHostAddress.ConversionMode': 'ConversionMode',
};

type Kind = 'method' | 'signal' | 'enum' | 'flags' | 'value' | 'other';
interface QtMember {
  name: string;
  kind: Kind;
  enum?: string | null;
  value?: number;
  type?: string;
}
interface QtListing {
  qt: string;
  pyqt: string;
  classes: Record<string, QtMember[]>;
  unknown: string[];
}

/** Runs qt_members.py for PyQt `major`: the listing, or why it could not. */
function listQt(major: 5 | 6, classes: string[]): QtListing | string {
  const r = spawnSync(PYTHON, ['-B', SCRIPT, String(major), ...classes], {
    encoding: 'utf8',
    timeout: 60000,
  });
  if (r.error) return `${PYTHON}: ${r.error.message}`;
  if (r.status !== 0) {
    const last = (r.stderr ?? '').trim().split('\n').pop() ?? `exit ${r.status}`;
    return `${PYTHON} cannot list PyQt${major}'s members (Debian: apt-get install python3-pyqt${major}): ${last}`;
  }
  return JSON.parse(r.stdout) as QtListing;
}

// ------------------------------------------------------------------ the documented absences

interface Absence {
  cls: string;
  name: string;
  kind: string;
  reason: string;
}

/** The rows of the docs' "Members not in the port" table. */
function documentedAbsences(): Absence[] {
  const text = fs.readFileSync(DOCS, 'utf8');
  const start = text.indexOf(`\n${DOCS_SECTION}\n`);
  if (start < 0) throw new Error(`${DOCS} has no section "${DOCS_SECTION}"`);
  const lines = text.slice(start + DOCS_SECTION.length + 2).split('\n');
  const end = lines.findIndex((l) => l.startsWith('## '));
  const rows = lines
    .slice(0, end < 0 ? lines.length : end)
    .filter((l) => l.startsWith('|'))
    .map((l) =>
      l
        .slice(1, -1)
        .split('|')
        .map((c) => c.trim().replace(/^`|`$/g, '')),
    );
  const [header, rule, ...body] = rows;
  expect(header).toEqual(['Class', 'Member', 'Kind', 'Reason']);
  expect(rule?.every((c) => /^-+$/.test(c))).toBe(true);
  return body.map(([cls, name, kind, reason]) => ({ cls, name, kind, reason }));
}

// ------------------------------------------------------------------ the port

class ProbeDevice extends QIODevice {
  protected readData(): Buffer | null {
    return null;
  }
  protected writeData(data: Buffer): number {
    return data.length;
  }
}

/** How to make an instance of each port class, for the members only instances have. */
const MAKE: Record<string, () => object> = {
  QIODevice: () => new ProbeDevice(),
  QAbstractSocket: () => new qt.QTcpSocket(),
  QTcpSocket: () => new qt.QTcpSocket(),
  QTcpServer: () => new qt.QTcpServer(),
  QLocalSocket: () => new qt.QLocalSocket(),
  QLocalServer: () => new qt.QLocalServer(),
  QNetworkProxy: () => new qt.QNetworkProxy(),
  QHostAddress: () => new qt.QHostAddress(),
  QUdpSocket: () => new qt.QUdpSocket(),
  QSslSocket: () => new qt.QSslSocket(),
  QSslServer: () => new qt.QSslServer(),
};

const instances = new Map<string, Record<string, unknown>>();
function instanceOf(cls: string): Record<string, unknown> {
  let instance = instances.get(cls);
  if (!instance) {
    instance = MAKE[cls]() as Record<string, unknown>;
    instances.set(cls, instance);
  }
  return instance;
}

/** What TypeScript knows of lib/qtnetwork/index.ts: its exports and its classes' members. */
class PortTypes {
  private readonly checker: ts.TypeChecker;
  private readonly exports = new Map<string, ts.Symbol>();

  constructor() {
    const config = ts.getParsedCommandLineOfConfigFile(
      path.join(root, 'tsconfig.json'),
      {},
      { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined },
    );
    const program = ts.createProgram([INDEX], { ...config!.options, noEmit: true });
    this.checker = program.getTypeChecker();
    const moduleSymbol = this.checker.getSymbolAtLocation(program.getSourceFile(INDEX)!)!;
    for (const s of this.checker.getExportsOfModule(moduleSymbol)) this.exports.set(s.name, s);
  }

  /** True if the index exports a type named `name` (a type alias, interface, class or enum). */
  exportsType(name: string): boolean {
    const s = this.exports.get(name);
    if (!s) return false;
    const target = s.flags & ts.SymbolFlags.Alias ? this.checker.getAliasedSymbol(s) : s;
    return (target.flags & ts.SymbolFlags.Type) !== 0;
  }

  /**
   * How class `cls` declares `name` (instance side, then static side): 'public',
   * 'protected', 'private', or null if neither side has it.
   */
  access(cls: string, name: string): 'public' | 'protected' | 'private' | null {
    const exported = this.exports.get(cls);
    if (!exported) return null;
    const c = this.checker.getAliasedSymbol(exported);
    const sides = [
      this.checker.getDeclaredTypeOfSymbol(c),
      this.checker.getTypeOfSymbolAtLocation(c, c.valueDeclaration!),
    ];
    for (const side of sides) {
      const member = this.checker.getPropertyOfType(side, name);
      if (!member) continue;
      const declaration = member.valueDeclaration ?? member.declarations?.[0];
      const flags = declaration ? ts.getCombinedModifierFlags(declaration) : 0;
      if (flags & ts.ModifierFlags.Private) return 'private';
      return flags & ts.ModifierFlags.Protected ? 'protected' : 'public';
    }
    return null;
  }
}

type Status = 'present' | 'private' | 'wrong value' | 'absent';

/** Whether the port has Qt's member `m` of class `cls`, and in what form. */
function portStatus(types: PortTypes, cls: string, m: QtMember): { status: Status; note?: string } {
  const klass = (qt as unknown as Record<string, Record<string, unknown>>)[cls];
  const instance = instanceOf(cls);
  const declared = (): Status => {
    const access = types.access(cls, m.name);
    if (access === null) return 'absent';
    return access === 'private' ? 'private' : 'present';
  };
  switch (m.kind) {
    case 'method':
      if (typeof instance[m.name] !== 'function' && typeof klass[m.name] !== 'function') {
        return { status: 'absent' };
      }
      return { status: declared() };
    case 'signal':
      return instance[m.name] instanceof Signal ? { status: declared() } : { status: 'absent' };
    case 'enum': {
      const e = klass[m.name];
      return typeof e === 'object' && e !== null ? { status: declared() } : { status: 'absent' };
    }
    case 'value': {
      const e = klass[m.enum ?? ''] as Record<string, unknown> | undefined;
      const v = typeof e === 'object' && e !== null ? e[m.name] : undefined;
      if (v === undefined) return { status: 'absent' };
      if (v !== m.value) return { status: 'wrong value', note: `${String(v)}, Qt ${m.value}` };
      return { status: 'present' };
    }
    case 'flags': {
      const typeName = FLAGS_TYPES[`${cls}.${m.name}`] ?? m.name;
      return types.exportsType(typeName)
        ? { status: 'present' }
        : { status: 'absent', note: `no exported type ${typeName}` };
    }
    default:
      return { status: 'absent', note: `a Python ${m.type ?? 'object'}` };
  }
}

// ------------------------------------------------------------------ the comparison

interface Row {
  cls: string;
  member: QtMember;
  status: Status;
  note?: string;
  documented?: Absence;
}

const key = (cls: string, name: string, kind: string): string => `${cls}.${name} (${kind})`;
const label = (r: Row): string =>
  `${r.member.kind === 'value' ? `${r.member.enum}.` : ''}${r.member.name}${r.member.kind === 'method' ? '()' : ''}` +
  `${r.member.kind !== 'method' ? ` [${r.member.kind}]` : ''}${r.note ? ` (${r.note})` : ''}`;

function compare(types: PortTypes, lists: Record<string, QtMember[]>, absences: Absence[]): Row[] {
  const byKey = new Map(absences.map((a) => [key(a.cls, a.name, a.kind), a]));
  return Object.entries(lists).flatMap(([cls, members]) =>
    members.map((member) => ({
      cls,
      member,
      ...portStatus(types, cls, member),
      documented: byKey.get(key(cls, member.name, member.kind)),
    })),
  );
}

const percent = (n: number, total: number): string =>
  total === 0 ? '   -  ' : `${((100 * n) / total).toFixed(1).padStart(5)}%`;

/** Per class: present / total for members and for enumerators; the undocumented gaps. */
function coverageReport(title: string, rows: Row[], classes: string[]): string {
  const out = [title];
  const count = (rs: Row[]) => ({
    present: rs.filter((r) => r.status === 'present').length,
    total: rs.length,
  });
  const figure = (name: string, subset: Row[]) => {
    const { present, total } = count(subset);
    return `${name} ${`${present}/${total}`.padStart(7)} ${percent(present, total)}`;
  };
  const line = (name: string, rs: Row[]) => {
    const values = rs.filter((r) => r.member.kind === 'value');
    const others = rs.filter((r) => r.member.kind !== 'value');
    const documented = rs.filter((r) => r.status !== 'present' && r.documented).length;
    const figures = [figure('members', others), figure('enumerators', values), figure('all', rs)];
    return [`  ${name.padEnd(16)}`, ...figures, `documented absent ${documented}`].join('   ');
  };
  for (const cls of classes) {
    const mine = rows.filter((r) => r.cls === cls);
    out.push(line(cls, mine));
  }
  out.push(line('overall', rows));
  const gaps = rows.filter((r) => r.status !== 'present' && !r.documented);
  for (const cls of classes) {
    const mine = gaps.filter((r) => r.cls === cls);
    if (mine.length === 0) continue;
    out.push(`  missing in ${cls} (${mine.length}):`);
    for (const r of mine) {
      out.push(`    ${label(r)}${r.status === 'absent' ? '' : ` -- ${r.status}`}`);
    }
  }
  return out.join('\n');
}

function ratio(rows: Row[]): number {
  return rows.length === 0 ? 1 : rows.filter((r) => r.status === 'present').length / rows.length;
}

// ------------------------------------------------------------------ the tests

const qt5 = listQt(5, QT5_CLASSES);
const qt6 = typeof qt5 === 'string' ? null : listQt(6, [...QT5_CLASSES, ...QT6_ONLY_CLASSES]);
if (typeof qt5 === 'string') console.log(`Member coverage skipped: ${qt5}`);
else if (typeof qt6 === 'string') {
  console.log(`Member coverage: QSslServer (Qt 6 only) and the Qt 6 report left out: ${qt6}`);
}
const maybe = typeof qt5 === 'string' ? describe.skip : describe;

maybe('Qt members in the port (Qt 5.15 from PyQt5, QSslServer from PyQt6)', () => {
  let types: PortTypes;
  let absences: Absence[];
  /** The required lists: Qt 5.15's classes, and QSslServer from Qt 6. */
  let target: Row[];
  /** Qt 6 members of the Qt 5 classes that Qt 5.15 does not have (reported only). */
  let qt6Only: Row[] = [];

  beforeAll(() => {
    const q5 = qt5 as QtListing;
    expect(q5.unknown).toEqual([]);
    types = new PortTypes();
    absences = documentedAbsences();
    const lists: Record<string, QtMember[]> = { ...q5.classes };
    if (qt6 && typeof qt6 !== 'string') {
      for (const cls of QT6_ONLY_CLASSES) lists[cls] = qt6.classes[cls];
      const extra: Record<string, QtMember[]> = {};
      for (const cls of QT5_CLASSES) {
        const known = new Set(q5.classes[cls].map((m) => key(cls, m.name, m.kind)));
        extra[cls] = qt6.classes[cls].filter((m) => !known.has(key(cls, m.name, m.kind)));
      }
      qt6Only = compare(types, extra, absences);
    }
    target = compare(types, lists, absences);
  }, 120000);

  it('reads the access and the exported types of the port with the TypeScript compiler', () => {
    expect(types.access('QIODevice', 'read')).toBe('public');
    expect(types.access('QIODevice', 'setOpenMode')).toBe('protected');
    expect(types.access('QIODevice', 'deviceMode')).toBe('private');
    expect(types.access('QAbstractSocket', 'readyRead')).toBe('public'); // inherited
    expect(types.access('QNetworkProxy', 'setApplicationProxy')).toBe('public'); // static
    expect(types.access('QIODevice', 'noSuchMember')).toBeNull();
    expect(types.exportsType('OpenMode')).toBe(true); // a type alias, absent at runtime
    expect(types.exportsType('QTcpSocket')).toBe(true);
    expect(types.exportsType('qWarning')).toBe(false); // a function is not a type
  });

  it('lists every Qt member as present in the port or documented as absent', () => {
    const gaps = target.filter((r) => r.status !== 'present' && !r.documented);
    expect(gaps.map((r) => `${r.cls}: ${label(r)} -- ${r.status}`)).toEqual([]);
  });

  it("gives every enumerator Qt's value", () => {
    const wrong = target.filter((r) => r.status === 'wrong value');
    expect(wrong.map((r) => `${r.cls}: ${label(r)}`)).toEqual([]);
  });

  it('documents only members that Qt has and the port lacks, each with a reason', () => {
    const known = new Map(
      [...target, ...qt6Only].map((r) => [key(r.cls, r.member.name, r.member.kind), r]),
    );
    const unchecked: string[] = [];
    const problems: string[] = [];
    for (const a of absences) {
      const k = key(a.cls, a.name, a.kind);
      const row = known.get(k);
      if (a.reason.length < 10) problems.push(`${k}: no reason given`);
      if (!row) {
        // Without PyQt6, a row for a Qt 6 member cannot be checked.
        if (qt6 && typeof qt6 !== 'string') problems.push(`${k}: Qt has no such member`);
        else unchecked.push(k);
      } else if (row.status === 'present') problems.push(`${k}: the port has it`);
    }
    if (unchecked.length) console.log(`Not checked without PyQt6: ${unchecked.join(', ')}`);
    const keys = absences.map((a) => key(a.cls, a.name, a.kind));
    expect(keys.filter((k, i) => keys.indexOf(k) !== i)).toEqual([]);
    expect(problems).toEqual([]);
  });

  it(`has at least ${COVERAGE_THRESHOLD * 100}% of Qt's members present`, () => {
    const q5 = qt5 as QtListing;
    const source =
      qt6 && typeof qt6 !== 'string'
        ? `Qt ${q5.qt} (PyQt ${q5.pyqt}); QSslServer from Qt ${qt6.qt} (PyQt ${qt6.pyqt})`
        : `Qt ${q5.qt} (PyQt ${q5.pyqt})`;
    const classes = [...new Set([...QT5_CLASSES, ...target.map((r) => r.cls)])];
    console.log(coverageReport(`Member coverage of the port, ${source}:`, target, classes));
    if (qt6Only.length > 0) {
      const title = 'Qt 6 members that Qt 5.15 does not have (report only):';
      console.log(coverageReport(title, qt6Only, QT5_CLASSES));
    }
    expect(ratio(target)).toBeGreaterThanOrEqual(COVERAGE_THRESHOLD);
  });
});

if (typeof qt5 === 'string') {
  it('member coverage is skipped: PyQt5 is not available', () => {
    console.log(`Member coverage: ${qt5}`);
    expect(qt5).not.toBe('');
  });
}
