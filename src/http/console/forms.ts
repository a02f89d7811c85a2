import { ZodError } from 'zod';
import { isAppError } from '../../core/errors.js';
import { html, type Html, type Part } from './html.js';

/**
 * Form plumbing shared by every screen: reading urlencoded bodies, turning a service error
 * into a message placed next to the field it names, and labelled controls. Inputs are named
 * after the API's fields (`assertion.private_key_pem`), so an error naming a field lands
 * beside that very control.
 */
export type FormBody = Record<string, string | string[]>;

export const formBody = (body: unknown): FormBody => (body && typeof body === 'object' ? (body as FormBody) : {});
export const one = (f: FormBody, name: string): string => {
  const v = f[name];
  return (Array.isArray(v) ? (v[0] ?? '') : (v ?? '')).trim();
};
export const many = (f: FormBody, name: string): string[] => {
  const v = f[name];
  return (Array.isArray(v) ? v : v === undefined ? [] : [v]).map((s) => s.trim()).filter(Boolean);
};
export const checked = (f: FormBody, name: string): boolean => one(f, name) !== '';
/** "a b, c" → ["a","b","c"] */
export const words = (s: string): string[] => s.split(/[\s,]+/).filter(Boolean);
/** "k=v" (or "k: v") per line → {k: v}; `sep` picks which. */
export function pairs(s: string, sep: '=' | ':'): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of s.split(/\r?\n/)) {
    const i = line.indexOf(sep);
    if (!line.trim()) continue;
    if (i <= 0) out[line.trim()] = '';
    else out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return out;
}

export interface FormError {
  /** The field the message concerns (dotted API path), or null for the form as a whole. */
  field: string | null;
  message: string;
  code: string;
}

/** A service error as a readable message, attached to the field it names when it names one. */
export function toFormError(err: unknown): FormError {
  if (err instanceof ZodError) {
    const issue = err.issues[0]!;
    const path = issue.path.join('.');
    const message = issue.code === 'invalid_type' && issue.input === undefined ? `Field "${path}" is required.` : `Field "${path || '(form)'}": ${issue.message}.`;
    return { field: path || null, message, code: 'invalid_request' };
  }
  if (isAppError(err)) {
    if (err.status >= 500 && err.code === 'internal') throw err;
    const m = /^Field "([^"]+)"/.exec(err.message);
    return { field: m ? m[1]! : null, message: err.message, code: err.code };
  }
  throw err;
}

const idOf = (name: string) => `f-${name.replace(/[^A-Za-z0-9_-]/g, '-')}`;
const concerns = (e: FormError | null | undefined, name: string) => !!e?.field && (e.field === name || e.field.startsWith(`${name}.`));

function wrap(name: string, label: string, control: Html, e: FormError | null | undefined, hint?: Part): Html {
  const id = idOf(name);
  return html`<div class="field${concerns(e, name) ? ' invalid' : ''}">
<label for="${id}">${label}</label>${control}
${hint ? html`<p class="hint" id="${id}-hint">${hint}</p>` : ''}
${concerns(e, name) ? html`<p class="field-error" id="${id}-error">${e!.message}</p>` : ''}
</div>`;
}

function aria(name: string, e: FormError | null | undefined, hint?: Part): Html {
  const id = idOf(name);
  const by = [hint ? `${id}-hint` : '', concerns(e, name) ? `${id}-error` : ''].filter(Boolean).join(' ');
  return html`${by ? html` aria-describedby="${by}"` : ''}${concerns(e, name) ? html` aria-invalid="true"` : ''}`;
}

export interface InputOpts {
  name: string;
  label: string;
  value?: string | number | null;
  type?: string;
  required?: boolean;
  hint?: Part;
  placeholder?: string;
  autocomplete?: string;
  error?: FormError | null;
}

export function input(o: InputOpts): Html {
  const control = html`<input id="${idOf(o.name)}" name="${o.name}" type="${o.type ?? 'text'}"${o.value !== undefined && o.value !== null && o.type !== 'password' ? html` value="${String(o.value)}"` : ''}${o.required ? html` required` : ''}${o.placeholder ? html` placeholder="${o.placeholder}"` : ''} autocomplete="${o.autocomplete ?? 'off'}"${aria(o.name, o.error, o.hint)}>`;
  return wrap(o.name, o.label, control, o.error, o.hint);
}

/** A write-only secret: the stored value is never rendered, only whether one is set. */
export function secret(o: Omit<InputOpts, 'value' | 'type'> & { isSet: boolean; multiline?: boolean }): Html {
  const state = o.isSet ? 'set — leave empty to keep it, or type a new value to replace it' : 'not set';
  const hint = html`<span class="secret-state">${o.isSet ? 'Set' : 'Not set'}</span> · write-only: ${state}.${o.hint ? html` ${o.hint}` : ''}`;
  const control = o.multiline
    ? html`<textarea id="${idOf(o.name)}" name="${o.name}" rows="4" spellcheck="false" autocomplete="off" placeholder="${o.isSet ? '(set — replace)' : (o.placeholder ?? '')}"${aria(o.name, o.error, hint)}></textarea>`
    : html`<input id="${idOf(o.name)}" name="${o.name}" type="password" autocomplete="new-password" placeholder="${o.isSet ? '(set — replace)' : (o.placeholder ?? '')}"${o.required && !o.isSet ? html` required` : ''}${aria(o.name, o.error, hint)}>`;
  return wrap(o.name, o.label, control, o.error, hint);
}

export function textarea(o: InputOpts & { rows?: number }): Html {
  const control = html`<textarea id="${idOf(o.name)}" name="${o.name}" rows="${o.rows ?? 3}" spellcheck="false"${o.placeholder ? html` placeholder="${o.placeholder}"` : ''}${aria(o.name, o.error, o.hint)}>${o.value ?? ''}</textarea>`;
  return wrap(o.name, o.label, control, o.error, o.hint);
}

export function select(o: { name: string; label: string; options: Array<{ value: string; label: string; group?: string }>; value?: string | null; hint?: Part; error?: FormError | null; required?: boolean }): Html {
  const opt = (x: { value: string; label: string }) => html`<option value="${x.value}"${x.value === (o.value ?? '') ? html` selected` : ''}>${x.label}</option>`;
  const groups = [...new Set(o.options.map((x) => x.group ?? ''))];
  const body = groups.length > 1 || groups[0] ? groups.map((g) => html`<optgroup label="${g}">${o.options.filter((x) => (x.group ?? '') === g).map(opt)}</optgroup>`) : o.options.map(opt);
  const control = html`<select id="${idOf(o.name)}" name="${o.name}"${o.required ? html` required` : ''}${aria(o.name, o.error, o.hint)}>${body}</select>`;
  return wrap(o.name, o.label, control, o.error, o.hint);
}

export function checkbox(o: { name: string; label: string; checked: boolean; hint?: Part; error?: FormError | null; value?: string; id?: string }): Html {
  const id = o.id ?? idOf(o.name);
  return html`<div class="field check${concerns(o.error, o.name) ? ' invalid' : ''}">
<input type="checkbox" id="${id}" name="${o.name}" value="${o.value ?? 'on'}"${o.checked ? html` checked` : ''}${aria(o.name, o.error, o.hint)}><label for="${id}">${o.label}</label>
${o.hint ? html`<p class="hint" id="${id}-hint">${o.hint}</p>` : ''}
${concerns(o.error, o.name) ? html`<p class="field-error" id="${id}-error">${o.error!.message}</p>` : ''}
</div>`;
}

/**
 * The form-level alert: the message itself when it names no control on the form, else a
 * pointer to the highlighted field (whose message sits beside it).
 */
export function formAlert(e: FormError | null | undefined, fieldsShown: string[]): Html {
  if (!e) return html``;
  const f = fieldsShown.find((x) => concerns(e, x));
  if (!f) return html`<div class="flash error" role="alert">${e.message}</div>`;
  return html`<div class="flash error" role="alert">Not saved: <a href="#${idOf(f)}">check the highlighted field</a>.</div>`;
}
