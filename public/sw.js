// Countersign's service worker: shows the push notifications the server sends for new requests and
// opens the request page when one is clicked. It caches nothing: every decision needs the live server.
'use strict';

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

// Only this site's own pages may be opened from a notification.
function ownPage(path) {
  const url = new URL(typeof path === 'string' ? path : '/inbox', self.location.origin);
  return url.origin === self.location.origin ? url.href : new URL('/inbox', self.location.origin).href;
}

self.addEventListener('push', (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch (_) {
    data = {};
  }
  const title = typeof data.title === 'string' ? data.title : 'Countersign: a request needs your decision';
  event.waitUntil(
    self.registration.showNotification(title, {
      body: typeof data.body === 'string' ? data.body : 'Open Countersign to read it.',
      tag: typeof data.tag === 'string' ? data.tag : undefined,
      data: { url: ownPage(data.url) },
      icon: '/icons/icon-192.png',
      badge: '/icons/icon-192.png',
      // A request waits for a person: keep it on screen until they act.
      requireInteraction: true,
    }),
  );
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const target = ownPage(event.notification.data && event.notification.data.url);
  event.waitUntil(
    self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then((windows) => {
      for (const client of windows) {
        if (client.url === target && 'focus' in client) return client.focus();
      }
      return self.clients.openWindow(target);
    }),
  );
});

// The push service replaced this browser's subscription (Firefox does this; so may others): tell the
// server, proving it is the same browser with the old subscription's auth secret, which only the
// browser and the server hold (the push service knows the endpoint, never the secret). Without this
// the old endpoint answers 410 and notifications stop without a word.
self.addEventListener('pushsubscriptionchange', (event) => {
  event.waitUntil((async () => {
    const old = event.oldSubscription;
    let fresh = event.newSubscription;
    if (!fresh && old) fresh = await self.registration.pushManager.subscribe(old.options);
    if (!old || !fresh) return;
    await fetch('/push/renew', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        old_endpoint: old.endpoint,
        old_auth: old.toJSON().keys.auth,
        subscription: fresh.toJSON(),
      }),
    });
  })());
});
