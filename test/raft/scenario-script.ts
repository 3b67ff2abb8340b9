import type { Message, NodeId } from '../../src/raft/types.ts';
import { Cluster } from '../support/cluster.ts';

/**
 * Runs a scenario script and returns its transcript: every command echoed after `> `, then
 * what it printed. Scripts read like etcd-raft's testdata: one command per line, `#` for a
 * comment.
 *
 *   nodes 1 2 3                       the group (must come first)
 *   log <id> term=<t> <terms...>      start <id> from a log with these entry terms
 *   campaign <id> | propose <id> <text> | tick <id> [n]
 *   read <id> <context>               ask <id> for a read index (printed when stabilized)
 *   transfer <leader> <target>        hand leadership over
 *   stabilize                         deliver until quiet, printing every message and read
 *   cut <a> <b> | isolate <id> | recover | crash <id> | restart <id>
 *   status                            each node's role, term, leader, commit and log terms
 */
export function runScenario(script: string): string {
  const out: string[] = [];
  let ids: NodeId[] = [];
  const logs = new Map<NodeId, { terms: number[]; term: number }>();
  let cluster: Cluster | undefined;
  let traffic: Message[] = [];

  const started = (): Cluster => {
    if (!cluster) {
      cluster = new Cluster({ ids, logs });
      cluster.onDeliver = (m) => {
        traffic.push(m);
        return m;
      };
    }
    return cluster;
  };
  let readsPrinted = 0;
  const printTraffic = (c: Cluster) => {
    for (const m of traffic) out.push(formatMessage(m));
    traffic = [];
    for (const read of c.reads.slice(readsPrinted)) {
      out.push(
        `  read ${read.context} on ${read.id}: ${read.index === 'failed' ? 'failed' : `index ${read.index}`}`,
      );
    }
    readsPrinted = c.reads.length;
  };

  for (const raw of script.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    if (line.startsWith('#')) {
      out.push(line);
      continue;
    }
    out.push(`> ${line}`);
    const [command, ...args] = line.split(/\s+/);
    const num = (i: number) => Number(args[i]);
    switch (command) {
      case 'nodes':
        ids = args.map(Number);
        break;
      case 'log':
        logs.set(num(0), {
          term: Number(args[1].replace('term=', '')),
          terms: args.slice(2).map(Number),
        });
        break;
      case 'campaign':
        started().node(num(0)).campaign();
        break;
      case 'propose': {
        const result = started()
          .node(num(0))
          .propose([new TextEncoder().encode(args[1])]);
        out.push(JSON.stringify(result));
        break;
      }
      case 'tick':
        started().tick(num(0), args[1] === undefined ? 1 : num(1));
        break;
      case 'stabilize':
        started().stabilize();
        printTraffic(started());
        break;
      case 'read':
        started().node(num(0)).readIndex(num(1));
        break;
      case 'transfer':
        out.push(started().node(num(0)).transferLeadership(num(1)));
        break;
      case 'cut':
        started().cut(num(0), num(1));
        break;
      case 'isolate':
        started().isolate(num(0));
        break;
      case 'recover':
        started().recover();
        break;
      case 'crash':
        started().crash(num(0));
        break;
      case 'restart':
        started().restart(num(0));
        break;
      case 'status':
        for (const id of ids) out.push(formatStatus(started(), id));
        break;
      default:
        throw new Error(`unknown scenario command: ${line}`);
    }
  }
  return `${out.join('\n')}\n`;
}

function formatMessage(m: Message): string {
  const parts = [`${m.from}->${m.to}`, m.type, `term=${m.term}`];
  switch (m.type) {
    case 'app':
      parts.push(`prev=${m.index}/${m.logTerm}`, `commit=${m.commit}`);
      if (m.entries.length > 0)
        parts.push(`entries=[${m.entries.map((e) => `${e.index}/${e.term}`).join(' ')}]`);
      break;
    case 'appResp':
      parts.push(
        m.reject ? `reject=${m.index} hint=${m.rejectHint}/${m.logTerm}` : `index=${m.index}`,
      );
      break;
    case 'vote':
    case 'preVote':
      parts.push(`last=${m.index}/${m.logTerm}`);
      if (m.context !== 0) parts.push('transfer');
      break;
    case 'voteResp':
    case 'preVoteResp':
      parts.push(m.reject ? 'rejected' : 'granted');
      break;
    case 'heartbeat':
      parts.push(`commit=${m.commit}`, `round=${m.context}`);
      break;
    case 'heartbeatResp':
      parts.push(`round=${m.context}`);
      break;
    case 'readIndex':
    case 'readLease':
      parts.push(`read=${m.context}`);
      break;
    case 'readIndexResp':
      parts.push(`read=${m.context}`, m.reject ? 'refused' : `index=${m.index}`);
      break;
    case 'prop':
      parts.push(`entries=${m.entries.length}`);
      break;
    default:
      break;
  }
  return `  ${parts.join(' ')}`;
}

function formatStatus(cluster: Cluster, id: NodeId): string {
  const node = cluster.node(id);
  const applied = cluster.appliedText(id);
  return `  ${id}: ${node.role} term=${node.term} lead=${node.lead} commit=${node.log.committed} log=[${cluster.logTerms(id).join(' ')}] applied=[${applied.join(' ')}]`;
}
