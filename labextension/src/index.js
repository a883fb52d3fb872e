// Actions on the finished outputs of %%interact cells: Copy and Save on every answer, Save and Copy on every image.
//
// A finished answer is plain Markdown (or JSON) so that every frontend, GitHub and nbviewer show it as it is, each
// image once. The kernel adds one small entry of its own type to that bundle (no content, only what the actions need:
// the file name to use, where the answer's text sits in text/plain, how many images there are) and the result's
// token in the output's metadata. This renderer draws the bundle's own Markdown or JSON with JupyterLab's renderers
// and puts the actions around it. Without this extension the entry is ignored and the Markdown shows as before;
// unlike a widget, nothing is left behind that cannot render when the notebook is reopened.
//
// Save goes through the kernel (a comm), which writes the full-size files to InteractMagics.save_dir under names taken
// from the prompt. When the kernel no longer knows the answer (restarted, or another kernel), Save downloads what the
// notebook holds instead, and says so.

import { Clipboard } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { Panel, Widget } from '@lumino/widgets';

export const MIME_TYPE = 'application/vnd.gemini-magics.actions+json';
const COMM_TARGET = 'gemini_magics.actions';
const REPLY_MS = 60000;
const GENERATED = /^generated image (\d+)/;
const GONE = new Set(['restarting', 'autorestarting', 'starting', 'dead', 'terminating']);

function button(label, title, onClick) {
  const node = document.createElement('button');
  node.type = 'button';
  node.className = 'gm-Action';
  node.textContent = label;
  node.title = title;
  node.addEventListener('click', onClick);
  return node;
}

function statusLine() {
  const node = document.createElement('span');
  node.className = 'gm-ActionStatus';
  node.setAttribute('aria-live', 'polite');
  return node;
}

function download(name, href) {
  const link = document.createElement('a');
  link.href = href;
  link.download = name;
  document.body.appendChild(link);
  link.click();
  link.remove();
}

async function copyText(text) {
  // the asynchronous clipboard exists only in secure contexts (https, localhost); elsewhere Lab's copy event works
  if (navigator.clipboard && navigator.clipboard.writeText) {
    try {
      await navigator.clipboard.writeText(text);
      return;
    } catch (err) {
      // denied or not focused: the copy event below still works inside a click
    }
  }
  Clipboard.copyToSystem(text);
}

function canCopyImages() {
  return Boolean(window.ClipboardItem && navigator.clipboard && navigator.clipboard.write);
}

async function pngOf(img) {
  const blob = await (await fetch(img.src)).blob();
  if (blob.type === 'image/png') {
    return blob;
  }
  // browsers put only PNG images on the clipboard: a JPEG preview is redrawn as PNG
  const canvas = document.createElement('canvas');
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  canvas.getContext('2d').drawImage(img, 0, 0);
  return new Promise(resolve => canvas.toBlob(resolve, 'image/png'));
}

function extensionOf(src) {
  const match = /^data:image\/([a-z+]+)/.exec(src);
  const kind = match ? match[1] : 'png';
  return kind === 'jpeg' ? 'jpg' : kind.replace('svg+xml', 'svg');
}

function savedLine(paths) {
  if (!paths || paths.length === 0) {
    return 'saved';
  }
  const more = paths.length > 1 ? ` and ${paths.length - 1} more file${paths.length > 2 ? 's' : ''}` : '';
  return `saved to ${paths[0]}${more}`;
}

// One request to the kernel that made the answer; the reply comes in the comm's close message. A kernel where the
// extension is not loaded has no such target and closes the comm with nothing in it.
function ask(kernel, data) {
  return new Promise(resolve => {
    let done = false;
    let timer = null;
    let onStatus = () => undefined;
    const finish = reply => {
      if (!done) {
        done = true;
        clearTimeout(timer);
        kernel.statusChanged.disconnect(onStatus);
        resolve(reply);
      }
    };
    if (GONE.has(kernel.status)) {
      finish({ ok: false, reason: 'restarted' }); // a new process: it cannot know the answer
      return;
    }
    onStatus = (_, status) => {
      if (GONE.has(status)) {
        finish({ ok: false, reason: 'restarted' });
      }
    };
    kernel.statusChanged.connect(onStatus);
    // a kernel busy with a long cell answers when that cell ends: wait for it, up to a minute
    timer = setTimeout(() => finish({ ok: false, reason: 'timeout' }), REPLY_MS);
    let comm;
    try {
      comm = kernel.createComm(COMM_TARGET);
    } catch (err) {
      finish({ ok: false, reason: 'no-kernel' });
      return;
    }
    comm.onClose = msg => {
      const reply = msg.content && msg.content.data;
      finish(reply && typeof reply.ok === 'boolean' ? reply : { ok: false, reason: 'unknown' });
    };
    // the kernel goes idle after the close: an open that ends without one found no answer (another kernel
    // process, or one where the extension is not loaded); a restart cancels it
    comm.open(data).done.then(
      () => finish({ ok: false, reason: 'unknown' }),
      () => finish({ ok: false, reason: 'restarted' })
    );
  });
}

class ResultRenderer extends Panel {
  constructor(options, registry, tracker) {
    super();
    this._options = options;
    this._registry = registry;
    this._tracker = tracker;
    this.addClass('gm-Result');
  }

  async renderModel(model) {
    while (this.widgets.length > 0) {
      this.widgets[0].dispose();
    }
    const actions = model.data[MIME_TYPE] || {};
    const rest = Object.assign({}, model.data);
    delete rest[MIME_TYPE];
    const mimeType = this._registry.preferredMimeType(rest, model.trusted ? 'any' : 'ensure');
    const factory = mimeType ? this._registry.getFactory(mimeType) : undefined;
    if (!factory) {
      return;
    }
    const inner = factory.createRenderer(Object.assign({}, this._options, { mimeType }));
    this.addWidget(inner);
    await inner.renderModel(model);
    const meta = (model.metadata && model.metadata.gemini_magics) || {};
    this._token = meta.result; // what the kernel knows this answer by
    this._decorateImages(inner.node, actions);
    this.addWidget(this._bar(actions, model));
  }

  _kernel() {
    const panel = this._tracker.find(p => p.node.contains(this.node)) || this._tracker.currentWidget;
    const session = panel && panel.sessionContext && panel.sessionContext.session;
    return session ? session.kernel : null;
  }

  async _save(status, request, fallback) {
    status.textContent = 'saving…';
    const kernel = this._kernel();
    const reply = kernel ? await ask(kernel, Object.assign({ result: this._token }, request)) : { ok: false };
    if (reply.ok) {
      status.textContent = savedLine(reply.saved);
      return;
    }
    if (reply.error) {
      status.textContent = `not saved: ${reply.error}`;
      return;
    }
    // the kernel that made this answer is gone (or held by a long cell): the browser keeps what the notebook holds
    const name = fallback();
    const why = reply.reason === 'timeout' ? 'the kernel is busy: no answer in a minute' : 'the kernel that made it is gone';
    status.textContent = `downloaded ${name} (${why})`;
  }

  _bar(actions, model) {
    const bar = document.createElement('div');
    bar.className = 'gm-ActionBar';
    const status = statusLine();
    const copy = actions.copy;
    const plain = model.data['text/plain'];
    const stem = actions.stem || 'gemini';
    bar.appendChild(
      button('Save answer', 'Save the answer (Markdown), its images and data to InteractMagics.save_dir', () =>
        this._save(status, { action: 'save' }, () => {
          const text = model.data['text/markdown'];
          const json = model.data['application/json'];
          const [body, kind, ext] =
            typeof text === 'string'
              ? [text, 'text/markdown', 'md']
              : [JSON.stringify(json, null, 2), 'application/json', 'json'];
          const url = URL.createObjectURL(new Blob([body], { type: kind }));
          download(`${stem}.${ext}`, url);
          setTimeout(() => URL.revokeObjectURL(url), 10000);
          return `${stem}.${ext}`;
        })
      )
    );
    // Save first everywhere: it is always there, Copy only where there is text (or a secure context, for images)
    if (copy && typeof plain === 'string') {
      bar.appendChild(
        button(copy.label || 'Copy text', 'Copy the answer to the clipboard', async () => {
          await copyText(plain.slice(copy.start, copy.end));
          status.textContent = 'copied';
        })
      );
    }
    bar.appendChild(status);
    return new Widget({ node: bar });
  }

  _decorateImages(root, actions) {
    const stem = actions.stem || 'gemini';
    const count = actions.images || 0;
    for (const img of Array.from(root.querySelectorAll('img'))) {
      const match = GENERATED.exec(img.getAttribute('alt') || '');
      if (!match) {
        continue;
      }
      const n = Number(match[1]);
      const figure = document.createElement('span');
      figure.className = 'gm-Figure';
      img.replaceWith(figure);
      const bar = document.createElement('span');
      bar.className = 'gm-ActionBar gm-FigureActions';
      const status = statusLine();
      bar.appendChild(
        button('Save image', 'Save this image, full size, to InteractMagics.save_dir', () =>
          this._save(status, { action: 'save_image', image: n }, () => {
            const name = `${stem}${count > 1 ? `-${n}` : ''}.${extensionOf(img.src)}`;
            download(name, img.src);
            return name;
          })
        )
      );
      if (canCopyImages()) {
        bar.appendChild(
          button('Copy image', 'Copy this image to the clipboard', async () => {
            try {
              await navigator.clipboard.write([new ClipboardItem({ 'image/png': await pngOf(img) })]);
              status.textContent = 'copied';
            } catch (err) {
              status.textContent = `not copied: ${err.message || err}`;
            }
          })
        );
      }
      bar.appendChild(status);
      figure.append(img, bar);
    }
  }
}

const plugin = {
  id: 'gemini-magics:results',
  description: 'Copy and Save on the finished outputs of %%interact cells.',
  autoStart: true,
  requires: [IRenderMimeRegistry, INotebookTracker],
  activate: (app, registry, tracker) => {
    // ahead of Markdown and of JSON's tree (rank 0): the bundle's own Markdown or JSON is drawn inside
    registry.addFactory(
      {
        safe: true,
        mimeTypes: [MIME_TYPE],
        createRenderer: options => new ResultRenderer(options, registry, tracker)
      },
      -1
    );
  }
};

export default plugin;
