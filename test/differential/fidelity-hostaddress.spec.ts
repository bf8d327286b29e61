/**
 * QHostAddress, differentially: each scenario runs once on real Qt (fidelity_hostaddress.py,
 * PyQt5 = Qt 5.15, or PyQt6 = Qt 6 for the hostaddress.qt6.* scenarios) and once on the port
 * (port-fidelity-hostaddress.ts), and the two event lists must be equal: parsing and
 * printing, the numeric and 16-byte forms, every classification, toIPv4Address with its ok
 * flag, isInSubnet and parseSubnet, isEqual under each conversion mode, operator== (the
 * port's equals), swap and copies. No network is used.
 *
 * Where the port deliberately differs (docs/qt-differences.md, "QHostAddress"), the case is
 * `known`: both sides must keep giving the lists recorded in known-differences.ts.
 *
 * Skips (with a printed reason): everything if /usr/bin/python3 (or $QT_DIFF_PYTHON) cannot
 * import PyQt5; the hostaddress.qt6.* cases if it cannot import PyQt6.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { jest } from '@jest/globals';

import { pyqt5MissingReason } from './peers.js';
import { HOSTADDRESS_SCENARIOS } from './port-fidelity-hostaddress.js';
import { makeRunner, type Case } from './runner.js';

jest.setTimeout(60000);

/** Debian's interpreter, which sees python3-pyqt5 (QT_DIFF_PYTHON overrides it). */
const PYTHON = process.env.QT_DIFF_PYTHON ?? '/usr/bin/python3';
const here = path.dirname(fileURLToPath(import.meta.url));
const DRIVER = path.join(here, 'fidelity_hostaddress.py');
const PREFIX = 'fidelity-hostaddress:';

function pyqt6MissingReason(python: string): string | null {
  const r = spawnSync(python, ['-c', 'import PyQt6.QtNetwork'], {
    timeout: 15000,
    encoding: 'utf8',
  });
  if (r.status === 0) return null;
  const detail = (r.stderr ?? '').trim().split('\n').pop() ?? '';
  return `${python} cannot import PyQt6.QtNetwork (Debian: apt-get install python3-pyqt6)${detail ? `: ${detail}` : ''}`;
}

const pyqtMissing = pyqt5MissingReason(PYTHON);
const pyqt6Missing = pyqtMissing ? null : pyqt6MissingReason(PYTHON);
if (pyqtMissing) console.log(`${PREFIX} every scenario skipped: ${pyqtMissing}`);
if (pyqt6Missing) console.log(`${PREFIX} hostaddress.qt6.* skipped: ${pyqt6Missing}`);

const { check, listQt } = makeRunner({
  python: PYTHON,
  driver: DRIVER,
  table: HOSTADDRESS_SCENARIOS,
});

const noPeers = (): { params: Record<string, never> } => ({ params: {} });
const KNOWN = { section: 'QHostAddress' };

const CASES: Case[] = [
  { scenario: 'hostaddress.text', title: 'text forms parse and print as in Qt', setup: noPeers },
  {
    scenario: 'hostaddress.numbers',
    title: 'quint32 addresses (7 and up, and fromIPv4Address) and special addresses',
    setup: noPeers,
  },
  {
    scenario: 'hostaddress.bytes',
    title: '16-byte IPv6 forms in, toIPv6Address out, round trips',
    setup: noPeers,
  },
  {
    scenario: 'hostaddress.classify',
    title: 'every classification of v4, v6, mapped, compatible, scoped and special addresses',
    setup: noPeers,
  },
  {
    scenario: 'hostaddress.subnet.isInSubnet',
    title: 'isInSubnet over prefix lengths, both forms, and with parseSubnet pairs',
    setup: noPeers,
  },
  {
    scenario: 'hostaddress.subnet.parseSubnet',
    title: 'parseSubnet: valid, partial and invalid networks',
    setup: noPeers,
  },
  {
    scenario: 'hostaddress.equality',
    title: 'isEqual under each conversion mode, operator== and == SpecialAddress',
    setup: noPeers,
  },
  { scenario: 'hostaddress.swap', title: 'swap and copies are independent', setup: noPeers },
  {
    scenario: 'hostaddress.known.quint32Small',
    title: 'known difference: numbers 0 to 6 are SpecialAddress values',
    setup: noPeers,
    known: KNOWN,
  },
  {
    scenario: 'hostaddress.known.staleScope',
    title: 'known difference: replacing an address drops its scope id',
    setup: noPeers,
    known: KNOWN,
  },
  {
    scenario: 'hostaddress.known.parseSubnetMapped',
    title: "known difference: parseSubnet's mapped network keeps its IPv4 form in step",
    setup: noPeers,
    known: KNOWN,
  },
];

const QT6_CASES: Case[] = [
  {
    scenario: 'hostaddress.qt6.toIPv4Address',
    title: 'toIPv4Address with its ok flag',
    setup: noPeers,
  },
  {
    scenario: 'hostaddress.qt6.equality',
    title: 'isEqual of IPv6 addresses and Any, as Qt 6 answers it',
    setup: noPeers,
  },
  {
    scenario: 'hostaddress.qt6.parseSubnet',
    title: 'only ASCII white space around a prefix length',
    setup: noPeers,
  },
];

const describeQt = pyqtMissing ? describe.skip : describe;

describeQt('QHostAddress: real Qt and the port, scenario by scenario', () => {
  it('the Qt driver and the port know the same scenarios', async () => {
    const listed = await listQt();
    expect(Object.keys(HOSTADDRESS_SCENARIOS).sort()).toEqual(listed);
    const cased = [...CASES, ...QT6_CASES].map((c) => c.scenario).sort();
    expect(cased).toEqual(listed);
  });

  describe.each(CASES.map((c) => [c.scenario, c] as const))('%s (Qt 5.15)', (_name, c) => {
    it(c.title, () => check(c));
  });

  (pyqt6Missing ? describe.skip : describe).each(QT6_CASES.map((c) => [c.scenario, c] as const))(
    '%s (Qt 6)',
    (_name, c) => {
      it(c.title, () => check(c));
    },
  );
});

if (pyqtMissing) {
  it('QHostAddress differential scenarios are skipped: real Qt is not available', () => {
    console.log(`${PREFIX} ${pyqtMissing}`);
    expect(pyqtMissing).not.toBeNull();
  });
}
