/**
 * Runs a differential case on both sides: the scenario on real Qt (a Python driver in a child
 * process) and its twin on the port, then compares the two event lists. Shared by
 * differential.spec.ts (sockets, servers, proxies) and the fidelity-*.spec.ts files (one per
 * area of the Qt fidelity work), each with its own driver and table of port scenarios.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { RECORDED } from './known-differences.js';
import type { RecordingPeer } from './peers.js';
import {
  runPortScenario,
  type Scenario,
  type ScenarioParams,
  type ScenarioResult,
} from './port-scenarios.js';

/** A Qt run that takes longer than this is killed (the drivers' own watchdog is 20 s). */
const QT_RUN_TIMEOUT_MS = 25000;

/** What a run of one side needs: params, and what to undo afterwards. */
export interface Setup {
  params: ScenarioParams;
  /** The recording peer the scenario talks to, if any: its view is appended to the events. */
  peer?: RecordingPeer;
  cleanup?: () => void;
}

/**
 * A scenario where Qt and the port differ for a documented reason: both sides must keep
 * giving the lists recorded in known-differences.ts (under the scenario's name).
 */
export interface KnownDifference {
  /** The docs/qt-differences.md section that documents it. */
  section: string;
}

export interface Case {
  /** The scenario's name in the Python driver and in the port's table. */
  scenario: string;
  title: string;
  setup: () => Promise<Setup> | Setup;
  /** Rewrites Qt's events for one documented difference (see the comment at each use). */
  normalise?: (qt: string[]) => string[];
  known?: KnownDifference;
}

export interface RunnerOptions {
  /** The interpreter that sees PyQt5. */
  python: string;
  /** The Python driver that holds the Qt side of the scenarios. */
  driver: string;
  /** The port side: the twins, by the same names. */
  table: Readonly<Record<string, Scenario>>;
}

export interface Runner {
  runQt(scenario: string, params: ScenarioParams): Promise<ScenarioResult>;
  /** The driver's scenario names, sorted. */
  listQt(): Promise<string[]>;
  check(c: Case): Promise<void>;
}

export function makeRunner({ python, driver, table }: RunnerOptions): Runner {
  const driverName = path.basename(driver);

  /** Runs `scenario` on real Qt in a child process (killed by PID after QT_RUN_TIMEOUT_MS). */
  function runQt(scenario: string, params: ScenarioParams): Promise<ScenarioResult> {
    return new Promise((resolve) => {
      execFile(
        python,
        [driver, scenario, JSON.stringify(params)],
        { timeout: QT_RUN_TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: 1 << 20 },
        (err, stdout, stderr) => {
          const line = stdout.trim().split('\n').pop() ?? '';
          try {
            resolve(JSON.parse(line) as ScenarioResult);
          } catch {
            resolve({
              events: [],
              failure: `${driverName} ${scenario} gave no result (${err?.message ?? 'no error'}); stdout: ${stdout}; stderr: ${stderr}`,
            });
          }
        },
      );
    });
  }

  function listQt(): Promise<string[]> {
    return new Promise<string[]>((resolve, reject) =>
      execFile(python, [driver, '--list'], { timeout: 15000 }, (err, stdout) =>
        err ? reject(err) : resolve(JSON.parse(stdout) as string[]),
      ),
    );
  }

  async function runSide(side: 'qt' | 'port', c: Case): Promise<string[]> {
    const { params, peer, cleanup } = await c.setup();
    try {
      peer?.reset();
      const result =
        side === 'qt'
          ? await runQt(c.scenario, params)
          : await runPortScenario(c.scenario, params, table);
      if (result.failure !== undefined) {
        throw new Error(
          `${side} run of ${c.scenario} failed:\n${result.failure}\nevents so far:\n${result.events.join('\n')}`,
        );
      }
      return peer ? [...result.events, ...(await peer.report())] : result.events;
    } finally {
      cleanup?.();
    }
  }

  async function check(c: Case): Promise<void> {
    const qt = await runSide('qt', c);
    const port = await runSide('port', c);
    const recordTo = process.env.QT_DIFF_RECORD;
    if (recordTo) {
      // QT_DIFF_RECORD=/path/file.jsonl appends both lists, to record a known difference.
      fs.appendFileSync(recordTo, JSON.stringify({ scenario: c.scenario, qt, port }) + '\n');
    }
    if (c.known) {
      // A documented difference (c.known.section): both sides must still give what was recorded.
      const recorded = RECORDED[c.scenario];
      if (!recorded) throw new Error(`known-differences.ts has no recording of ${c.scenario}`);
      expect({ qt }).toEqual({ qt: recorded.qt });
      expect({ port }).toEqual({ port: recorded.port });
      return;
    }
    expect(port).toEqual(c.normalise ? c.normalise(qt) : qt);
  }

  return { runQt, listQt, check };
}
