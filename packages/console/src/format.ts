/** Times and sizes as people read them. */

export function ago(iso: string | null | undefined, now: number): string {
  if (!iso) return 'never';
  const sec = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (sec < 60) return `${sec} s ago`;
  if (sec < 3600) return `${Math.floor(sec / 60)} min ${sec % 60} s ago`;
  if (sec < 86_400) return `${Math.floor(sec / 3600)} h ${Math.floor((sec % 3600) / 60)} min ago`;
  return `${Math.floor(sec / 86_400)} d ago`;
}

export function until(iso: string, now: number): string {
  const sec = Math.round((Date.parse(iso) - now) / 1000);
  if (sec <= 0) return 'passed';
  if (sec < 3600) return `in ${Math.ceil(sec / 60)} min`;
  if (sec < 86_400) return `in ${Math.floor(sec / 3600)} h ${Math.floor((sec % 3600) / 60)} min`;
  return `in ${Math.floor(sec / 86_400)} d`;
}

export function time(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n >= 10 || i === 0 ? Math.round(n) : n.toFixed(1)} ${units[i]}`;
}

export function labelText(labels: Record<string, string>): string[] {
  return Object.entries(labels).map(([k, v]) => `${k}=${v}`);
}
