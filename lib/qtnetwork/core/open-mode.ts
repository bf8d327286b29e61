/** `QIODevice::OpenModeFlag`, with Qt's values; combine flags with `|`. */
export enum OpenModeFlag {
  NotOpen = 0x0000,
  ReadOnly = 0x0001,
  WriteOnly = 0x0002,
  ReadWrite = ReadOnly | WriteOnly,
  Append = 0x0004,
  Truncate = 0x0008,
  Text = 0x0010,
  Unbuffered = 0x0020,
  NewOnly = 0x0040,
  ExistingOnly = 0x0080,
}

/** A combination of OpenModeFlag values (Qt's `QIODevice::OpenMode`). */
export type OpenMode = number;
