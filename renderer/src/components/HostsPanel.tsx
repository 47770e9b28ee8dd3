import { useEffect, useState } from 'react';
import { useActions, useStrata } from '../store/context.js';
import { hostFormProblem, hostKeyFileType } from '../store/hosts.js';
import type { HostForm } from '../store/hosts.js';
import type { Dialog } from '../store/strataStore.js';
import { Bytes, Modal } from './common.js';

const FORM_FIELDS: Array<{
  field: keyof HostForm;
  label: string;
  option: string;
  placeholder: string;
  className: string;
}> = [
  {
    field: 'host',
    label: 'Host',
    option: '--remote-host',
    placeholder: 'db1.example.com',
    className: 'mono',
  },
  { field: 'port', label: 'Port', option: '--remote-port', placeholder: '22', className: 'short' },
  {
    field: 'user',
    label: 'User',
    option: '--remote-user',
    placeholder: 'postgres',
    className: 'mono',
  },
  {
    field: 'remotePath',
    label: 'Node.js on host',
    option: '--remote-path',
    placeholder: '/usr/local/bin (default: PATH)',
    className: 'mono grow',
  },
  {
    field: 'sshOptions',
    label: 'SSH options',
    option: '--ssh-options',
    placeholder: '-i ~/.ssh/backup_key -o ServerAliveInterval=30',
    className: 'mono grow',
  },
];

function ConnectForm() {
  const form = useStrata((state) => state.hostForm);
  const note = useStrata((state) => state.hostFormNote);
  const connecting = useStrata((state) => state.connecting);
  const actions = useActions();
  const problem = hostFormProblem(form);
  return (
    <form
      className="host-form"
      data-testid="host-form"
      onSubmit={(event) => {
        event.preventDefault();
        void actions.connectHost();
      }}
    >
      {note && (
        <p className="note-box" data-testid="host-form-note">
          {note}
        </p>
      )}
      <div className="host-fields">
        {FORM_FIELDS.map(({ field, label, option, placeholder, className }) => (
          <label key={field} className={`host-field host-field-${field}`}>
            <span>
              {label} <code className="muted">{option}</code>
            </span>
            <input
              className={className}
              data-testid={`host-${field}`}
              placeholder={placeholder}
              value={form[field]}
              onChange={(event) => actions.updateHostForm({ [field]: event.target.value })}
            />
          </label>
        ))}
        <button
          type="submit"
          className="primary"
          data-testid="host-connect"
          disabled={connecting || problem !== null}
          title={problem ?? undefined}
        >
          {connecting ? 'Connecting…' : 'Connect'}
        </button>
      </div>
      <p className="hint">
        The options pg_probackup takes for a remote host. The host needs Node.js 20 or newer and a
        POSIX shell; Strata copies its agent into <code>~/.cache/strata/</code> there.
      </p>
    </form>
  );
}

function HostsTable() {
  const hosts = useStrata((state) => state.hosts);
  const connecting = useStrata((state) => state.connecting);
  const actions = useActions();
  if (hosts.length === 0) {
    return (
      <p className="muted" data-testid="hosts-empty">
        No host connected: catalogs and restores are on this computer.
      </p>
    );
  }
  return (
    <table className="grid" data-testid="hosts-table">
      <thead>
        <tr>
          <th>Host</th>
          <th>Host key</th>
          <th>Node.js</th>
          <th>SSH options</th>
          <th className="num">Sent</th>
          <th className="num">Received</th>
          <th>State</th>
          <th />
        </tr>
      </thead>
      <tbody>
        {hosts.map((host) => (
          <tr
            key={host.id}
            data-testid={`host-row-${host.id}`}
            data-state={host.connected ? 'connected' : 'dropped'}
          >
            <td className="mono strong">{host.id}</td>
            <td>
              <span className="muted">{host.hostKey.keyType}</span>{' '}
              <span className="mono" data-testid="host-row-fingerprint">
                {host.hostKey.fingerprint}
              </span>
            </td>
            <td className="mono" data-testid="host-row-node">
              {host.nodeVersion}
            </td>
            <td className="mono path" title={host.sshOptions ?? undefined}>
              {host.sshOptions ?? '—'}
            </td>
            <td className="num">
              <Bytes value={host.traffic.bytesSent} />
            </td>
            <td className="num">
              <Bytes value={host.traffic.bytesReceived} />
            </td>
            <td className="wrap">
              {host.connected ? (
                <span className="job-state job-succeeded">connected</span>
              ) : (
                <>
                  <span className="job-state job-failed">dropped</span>{' '}
                  <span className="bad" data-testid="host-row-problem">
                    {host.problem}
                  </span>
                </>
              )}
            </td>
            <td className="num">
              {!host.connected && (
                <button
                  type="button"
                  className="link"
                  data-testid="host-reconnect"
                  disabled={connecting}
                  onClick={() => void actions.reconnectHost(host.id)}
                >
                  Reconnect
                </button>
              )}
              <button
                type="button"
                className="link"
                data-testid="host-disconnect"
                onClick={() => void actions.disconnectHost(host.id)}
              >
                {host.connected ? 'Disconnect' : 'Remove'}
              </button>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** The connection form and the connected hosts, in the Catalogs view. */
export function HostsPanel() {
  const actions = useActions();
  // Connections drop without an event: the table is read again whenever the panel is shown.
  useEffect(() => {
    void actions.loadHosts();
  }, [actions]);
  return (
    <section className="panel" data-testid="hosts-panel">
      <h2>Hosts</h2>
      <p className="hint">
        Connect to a host over SSH to open a catalog there (<code>ssh://user@host:port/path</code>)
        or to restore onto it.
      </p>
      <ConnectForm />
      <HostsTable />
    </section>
  );
}

/**
 * First contact with a host: nothing vouches for its key yet, so the DBA compares the fingerprint
 * with the one the host itself prints before anything is sent to it (what ssh asks on a terminal).
 */
export function HostKeyDialog({ dialog }: { dialog: Extract<Dialog, { kind: 'host-key' }> }) {
  const connecting = useStrata((state) => state.connecting);
  const actions = useActions();
  const { hostKey } = dialog;
  const keyFile = `/etc/ssh/ssh_host_${hostKeyFileType(hostKey.keyType)}_key.pub`;
  return (
    <Modal
      title={`First connection to ${hostKey.host}:${hostKey.port}`}
      onClose={() => actions.closeDialog()}
      testId="host-key-dialog"
    >
      <p>
        This computer has never connected to <span className="mono strong">{hostKey.host}</span>{' '}
        port {hostKey.port}: nothing confirms yet that the server answering is that host. It
        presented this key:
      </p>
      <dl className="fields key-fields">
        <dt>Key type</dt>
        <dd className="mono" data-testid="host-key-type">
          {hostKey.keyType}
        </dd>
        <dt>Fingerprint</dt>
        <dd className="mono strong fingerprint" data-testid="host-key-fingerprint">
          {hostKey.fingerprint}
        </dd>
        <dt>Recorded in</dt>
        <dd className="mono" data-testid="host-key-file">
          {hostKey.knownHostsFile ??
            'nowhere (known_hosts recording is off): asked again next time'}
        </dd>
      </dl>
      <p>Compare it with what this command prints when run on that host itself:</p>
      <pre className="command-box" data-testid="host-key-command">
        ssh-keygen -lf {keyFile}
      </pre>
      <p className="hint">
        Trust it only when the two fingerprints are the same. Once trusted, a different key from
        this host is refused.
      </p>
      <div className="row end">
        <button type="button" data-testid="host-key-cancel" onClick={() => actions.closeDialog()}>
          Cancel
        </button>
        <button
          type="button"
          className="primary"
          data-testid="host-key-trust"
          disabled={connecting}
          onClick={() => void actions.trustHostKey()}
        >
          Trust and connect
        </button>
      </div>
    </Modal>
  );
}

export function PassphraseDialog({ dialog }: { dialog: Extract<Dialog, { kind: 'passphrase' }> }) {
  const connecting = useStrata((state) => state.connecting);
  const actions = useActions();
  const [passphrase, setPassphrase] = useState('');
  return (
    <Modal
      title={`Passphrase for ${dialog.request.host}`}
      onClose={() => actions.closeDialog()}
      testId="passphrase-dialog"
    >
      <form
        onSubmit={(event) => {
          event.preventDefault();
          void actions.submitPassphrase(passphrase);
        }}
      >
        <p>
          The key file <span className="mono">{dialog.keyFile}</span> is encrypted. Its passphrase
          is used for this connection only and is not stored.
        </p>
        {dialog.retry && (
          <p className="bad" data-testid="passphrase-retry">
            That passphrase does not decrypt the key: type it again.
          </p>
        )}
        <label className="field">
          <span>Passphrase</span>
          <input
            type="password"
            className="grow"
            autoComplete="off"
            autoFocus
            data-testid="passphrase-input"
            value={passphrase}
            onChange={(event) => setPassphrase(event.target.value)}
          />
        </label>
        <div className="row end">
          <button type="button" onClick={() => actions.closeDialog()}>
            Cancel
          </button>
          <button
            type="submit"
            className="primary"
            data-testid="passphrase-submit"
            disabled={connecting || passphrase === ''}
          >
            Connect
          </button>
        </div>
      </form>
    </Modal>
  );
}
