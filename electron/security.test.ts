import { describe, expect, it } from 'vitest';
import {
  CONTENT_SECURITY_POLICY,
  contentTypeOf,
  desktopStrataCommand,
  isAppUrl,
  rendererFileFor,
} from './security.js';

describe('the app:// origin', () => {
  it('is the only place the window may navigate to', () => {
    expect(isAppUrl('app://strata/index.html')).toBe(true);
    expect(isAppUrl('app://strata/backups/TP11RT')).toBe(true);
    expect(isAppUrl('app://other/index.html')).toBe(false);
    expect(isAppUrl('https://strata/index.html')).toBe(false);
    expect(isAppUrl('file:///etc/passwd')).toBe(false);
    expect(isAppUrl('not a url')).toBe(false);
  });

  it('serves files of the renderer build only', () => {
    const dir = '/opt/strata/dist/renderer';
    expect(rendererFileFor('app://strata/', dir)).toBe(`${dir}/index.html`);
    expect(rendererFileFor('app://strata/assets/index-3f2a.js', dir)).toBe(
      `${dir}/assets/index-3f2a.js`,
    );
    expect(rendererFileFor('app://strata/instances/demo', dir)).toBe(`${dir}/index.html`);
    // The URL parser already resolves dot segments: this is the app's own route /etc/passwd.
    expect(rendererFileFor('app://strata/%2e%2e/%2e%2e/etc/passwd', dir)).toBe(`${dir}/index.html`);
    expect(rendererFileFor('app://strata/assets/..%2f..%2f..%2fetc%2fpasswd', dir)).toBeUndefined();
    expect(rendererFileFor('app://strata/a%00.js', dir)).toBeUndefined();
    expect(rendererFileFor('https://example.com/app.js', dir)).toBeUndefined();
    expect(contentTypeOf(`${dir}/assets/app.css`)).toBe('text/css; charset=utf-8');
  });

  it('has a policy that allows the app itself and nothing else', () => {
    const directives = Object.fromEntries(
      CONTENT_SECURITY_POLICY.split('; ').map((directive) => [directive.split(' ')[0], directive]),
    );
    expect(directives['default-src']).toBe("default-src 'none'");
    expect(directives['script-src']).toBe("script-src 'self'");
    expect(directives['object-src']).toBe("object-src 'none'");
    expect(directives['frame-ancestors']).toBe("frame-ancestors 'none'");
    expect(CONTENT_SECURITY_POLICY).not.toMatch(/unsafe-(inline|eval)/);
  });
});

describe('desktopStrataCommand', () => {
  it('runs the CLI bundle with the app binary in Node mode, outside the asar archive', () => {
    expect(desktopStrataCommand('/opt/Strata/strata', '/opt/Strata/resources/app.asar')).toBe(
      'ELECTRON_RUN_AS_NODE=1 "/opt/Strata/strata" "/opt/Strata/resources/app.asar.unpacked/dist/strata.mjs"',
    );
    expect(desktopStrataCommand('/work/node_modules/electron/dist/electron', '/work')).toBe(
      'ELECTRON_RUN_AS_NODE=1 "/work/node_modules/electron/dist/electron" "/work/dist/strata.mjs"',
    );
  });
});
