/**
 * Minimal server-rendered pages for the flows a browser walks through (the authorization-code
 * callback, the password login screen). Everything is escaped; no external resources.
 */
export const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

export function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} · tokenrelay</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#1d2330}
h1{font-size:1.3rem}.ok{border-left:4px solid #2e7d32;padding:.5rem 1rem;background:#eef7ee}
.err{border-left:4px solid #c62828;padding:.5rem 1rem;background:#fdeeee}
label{display:block;margin:.8rem 0 .2rem}input{font:inherit;padding:.4rem;width:100%;box-sizing:border-box}
button{font:inherit;margin-top:1rem;padding:.5rem 1.2rem}
</style></head><body>${body}</body></html>`;
}

export const resultPage = (ok: boolean, title: string, message: string, extra = ''): string =>
  page(title, `<h1>${esc(title)}</h1><p class="${ok ? 'ok' : 'err'}" role="${ok ? 'status' : 'alert'}">${esc(message)}</p>${extra}`);
