/**
 * The console's only stylesheet and script, served from the instance itself (no CDN, no web
 * font: it works offline and under a strict Content-Security-Policy). The pages work without
 * the script; it adds progress on long actions, confirmations and copy buttons.
 */
export const CSS = `
:root{--fg:#1c2430;--muted:#5d6878;--line:#d9dee5;--bg:#f5f7fa;--card:#fff;--accent:#1f5fbf;--accent-bg:#e8f0fc;
--ok:#1e7a3a;--ok-bg:#e7f5eb;--warn:#8a5a00;--warn-bg:#fdf3dc;--bad:#b3261e;--bad-bg:#fcebea;--info:#1f5fbf;--info-bg:#e8f0fc}
*{box-sizing:border-box}
html{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg)}
body{margin:0;min-height:100vh;display:grid;grid-template-columns:15rem 1fr}
a{color:var(--accent)}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.88em}
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:#fff;padding:.5rem;z-index:9}
.side{background:#16202e;color:#d5dce6;padding:1rem 0;display:flex;flex-direction:column}
.brand{display:block;color:#fff;font-weight:700;font-size:1.1rem;text-decoration:none;padding:0 1.2rem 1rem}
.brand small{display:block;font-weight:400;color:#93a1b5;font-size:.78rem}
.side h2{font-size:.72rem;text-transform:uppercase;letter-spacing:.06em;color:#8795aa;margin:1rem 1.2rem .3rem}
.side ul{list-style:none;margin:0;padding:0}
.side a{display:block;padding:.35rem 1.2rem;color:#d5dce6;text-decoration:none;border-left:3px solid transparent}
.side a:hover{background:#1f2b3d;color:#fff}
.side a[aria-current=page]{background:#243349;color:#fff;border-left-color:#6aa0ff}
.side form{margin-top:auto;padding:1rem 1.2rem 0}
.side .linkish{color:#aab6c8}
main{padding:1.5rem 2rem 3rem;max-width:80rem;min-width:0}
.crumbs{font-size:.85rem;color:var(--muted);margin:0 0 .2rem}
.crumbs a{color:var(--muted)}
.head{display:flex;align-items:center;gap:1rem;flex-wrap:wrap;margin-bottom:1rem}
.head h1{font-size:1.45rem;margin:0;flex:1}
h2{font-size:1.1rem;margin:1.6rem 0 .6rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:1rem 1.2rem;margin:0 0 1rem}
.card>h2:first-child{margin-top:0}
.lead{color:var(--muted);margin-top:-.4rem}
.flash,.banner{border-radius:6px;padding:.7rem 1rem;margin:0 0 1rem;border-left:4px solid}
.flash.ok,.banner.ok{background:var(--ok-bg);border-color:var(--ok)}
.flash.error,.banner.bad{background:var(--bad-bg);border-color:var(--bad)}
.flash.info,.banner.info{background:var(--info-bg);border-color:var(--info)}
.banner.warn{background:var(--warn-bg);border-color:var(--warn)}
.banner{font-weight:500}
.table-wrap{overflow-x:auto;background:var(--card);border:1px solid var(--line);border-radius:8px;margin-bottom:1rem}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.5rem .75rem;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:.8rem;color:var(--muted);font-weight:600;background:#fafbfd;white-space:nowrap}
tbody tr:last-child td{border-bottom:0}
tbody tr:hover{background:#fafcff}
caption{text-align:left;padding:.6rem .75rem;font-weight:600}
.empty{background:var(--card);border:1px dashed var(--line);border-radius:8px;padding:1.2rem;color:var(--muted);margin-bottom:1rem}
.badge{display:inline-block;border-radius:999px;padding:0 .55rem;font-size:.8rem;font-weight:600;white-space:nowrap}
.badge.ok{background:var(--ok-bg);color:var(--ok)}.badge.bad{background:var(--bad-bg);color:var(--bad)}
.badge.warn{background:var(--warn-bg);color:var(--warn)}.badge.info{background:var(--info-bg);color:var(--info)}
.badge.muted{background:#eceff3;color:var(--muted)}
.muted{color:var(--muted)}.abs{font-size:.85em}td .abs{display:block;white-space:nowrap}td:first-child{white-space:nowrap}
.facts{display:grid;grid-template-columns:minmax(9rem,max-content) 1fr;gap:.35rem 1.2rem;margin:0}
.facts dt{color:var(--muted)}.facts dd{margin:0;overflow-wrap:anywhere}
form.stack{max-width:44rem}
fieldset{border:1px solid var(--line);border-radius:8px;padding:.6rem 1rem 1rem;margin:1rem 0;background:var(--card)}
legend{font-weight:600;padding:0 .3rem}
.field{margin:.8rem 0}
.field>label{display:block;font-weight:600;margin-bottom:.2rem}
.field.check{display:flex;flex-wrap:wrap;align-items:baseline;gap:.4rem}
.field.check>label{font-weight:500;margin:0}.field.check .hint,.field.check .field-error{flex-basis:100%;margin-left:1.6rem}
input[type=text],input[type=password],input[type=url],input[type=number],input:not([type]),select,textarea{font:inherit;width:100%;padding:.45rem .55rem;border:1px solid #b9c2ce;border-radius:6px;background:#fff;color:inherit}
textarea{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.88rem}
input:focus,select:focus,textarea:focus,button:focus-visible,a:focus-visible{outline:3px solid #9cc0ff;outline-offset:1px}
.hint{color:var(--muted);font-size:.85rem;margin:.2rem 0 0}
.secret-state{font-weight:600;color:var(--fg)}
.invalid input,.invalid select,.invalid textarea{border-color:var(--bad);background:#fffafa}
.field-error{color:var(--bad);font-weight:600;font-size:.9rem;margin:.25rem 0 0}
button,.button{font:inherit;display:inline-block;border:1px solid var(--accent);background:var(--accent);color:#fff;border-radius:6px;padding:.45rem 1rem;cursor:pointer;text-decoration:none;line-height:1.4}
button.secondary,.button.secondary{background:#fff;color:var(--accent)}
button.danger{background:#fff;color:var(--bad);border-color:#e0a9a5}
button.small{padding:.15rem .6rem;font-size:.85rem}
button.linkish{background:none;border:0;color:var(--accent);padding:0;text-decoration:underline}
button[disabled]{opacity:.6;cursor:progress}
.actions{display:flex;gap:.4rem;flex-wrap:wrap;align-items:center}.actions form{display:inline}
.related{list-style:none;padding:0;margin:0;display:flex;gap:1.2rem;flex-wrap:wrap}
.progress{display:none;margin:.6rem 0 0;color:var(--info);font-weight:500}
.busy .progress{display:block}
.spinner{display:inline-block;width:.9em;height:.9em;border:2px solid currentColor;border-right-color:transparent;border-radius:50%;animation:spin .8s linear infinite;vertical-align:-.1em;margin-right:.4rem}
@keyframes spin{to{transform:rotate(360deg)}}
pre{background:#0f1722;color:#e3e9f2;padding:.8rem 1rem;border-radius:6px;overflow:auto;max-height:28rem;white-space:pre-wrap;overflow-wrap:anywhere}
.command{display:flex;gap:.5rem;align-items:flex-start}.command pre{flex:1;margin:0}
.filters{display:flex;gap:.8rem;flex-wrap:wrap;align-items:flex-end;background:var(--card);border:1px solid var(--line);border-radius:8px;padding:.4rem 1rem .8rem;margin-bottom:1rem}
.filters .field{margin:.4rem 0 0;min-width:10rem}
.pager{display:flex;gap:1rem;justify-content:flex-end;margin-bottom:1rem}
.picker{border:1px solid var(--line);border-radius:6px;background:#fff;padding:.2rem .8rem}
.picker .field{margin:.4rem 0}
.steps{margin:0;padding-left:1.3rem}.steps li{margin:.3rem 0}
.login{grid-column:1/-1;display:grid;place-items:center;padding:2rem}
.login .card{width:min(26rem,100%);padding:1.5rem}
.cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(22rem,1fr));gap:1rem}
form:has(#f-use_mid_server:not(:checked)) .mid-only{display:none}
form:has(#f-applies_to-all:checked) .specific-only{display:none}
form:has(#f-default_grant_type option[value="client_credentials"]:checked):has(#f-client_auth_method option:not([value="private_key_jwt"]):checked) .assertion-only,
form:has(#f-default_grant_type option[value="authorization_code"]:checked):has(#f-client_auth_method option:not([value="private_key_jwt"]):checked) .assertion-only,
form:has(#f-default_grant_type option[value="password"]:checked):has(#f-client_auth_method option:not([value="private_key_jwt"]):checked) .assertion-only{display:none}
@media (max-width:900px){body{grid-template-columns:1fr;grid-template-rows:auto 1fr}.side{flex-direction:row;flex-wrap:wrap;align-items:center;padding:.5rem}
.side h2{display:none}.side ul{display:flex;flex-wrap:wrap}.side form{margin:0 0 0 auto;padding:0 .5rem}main{padding:1rem}}
`;

export const JS = `
'use strict';
document.addEventListener('submit', function (ev) {
  var form = ev.target;
  if (!(form instanceof HTMLFormElement)) return;
  var q = form.getAttribute('data-confirm');
  if (q && !window.confirm(q)) { ev.preventDefault(); return; }
  if (!form.hasAttribute('data-progress')) return;
  form.classList.add('busy');
  form.setAttribute('aria-busy', 'true');
  var b = form.querySelector('button[type=submit],button:not([type])');
  var label = form.getAttribute('data-progress-button') || 'Working…';
  // Forms marked data-async are sent with fetch, so the page (and its progress) stays live;
  // the server answers {"redirect"} and the browser goes there. Without fetch: a plain post.
  if (form.hasAttribute('data-async') && window.fetch && window.URLSearchParams) {
    ev.preventDefault();
    if (b) { b.disabled = true; b.textContent = label; }
    fetch(form.action, { method: 'POST', body: new URLSearchParams(new FormData(form)), credentials: 'same-origin', headers: { 'x-console-fetch': '1' } })
      .then(function (r) {
        var json = (r.headers.get('content-type') || '').indexOf('application/json') === 0;
        if (r.ok && json) return r.json().then(function (j) { location.assign(j.redirect); });
        return r.text().then(function (t) { document.open(); document.write(t); document.close(); });
      }, function () { form.submit(); });
    return;
  }
  setTimeout(function () { if (b) { b.disabled = true; b.textContent = label; } }, 0);
});
document.querySelectorAll('[data-copy]').forEach(function (btn) {
  btn.hidden = false;
  btn.addEventListener('click', function () {
    var el = document.querySelector(btn.getAttribute('data-copy'));
    if (!el) return;
    var text = el.textContent || '';
    var done = function () { btn.textContent = 'Copied'; setTimeout(function () { btn.textContent = 'Copy'; }, 2000); };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(done, function () {});
    else { var r = document.createRange(); r.selectNodeContents(el); var s = getSelection(); s.removeAllRanges(); s.addRange(r); }
  });
});
`;
