// Sign-in page: posts the credential as JSON (a cross-site form cannot),
// then loads the application.
const form = document.getElementById('signin');
const err = document.getElementById('error');
form.addEventListener('submit', async (e) => {
  e.preventDefault();
  err.hidden = true;
  const button = document.getElementById('signin-button');
  button.disabled = true;
  try {
    const r = await fetch('/ui/session', {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ credential: document.getElementById('credential').value }),
    });
    if (r.ok) {
      location.replace('/#/fleet');
      location.reload();
      return;
    }
    const body = await r.json().catch(() => ({}));
    err.textContent = body.error?.message || `sign-in failed (${r.status})`;
    err.hidden = false;
  } catch (x) {
    err.textContent = 'the hub did not answer: ' + x.message;
    err.hidden = false;
  } finally {
    button.disabled = false;
  }
});
document.getElementById('credential').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); }
});
