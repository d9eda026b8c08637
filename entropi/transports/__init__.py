"""L3 how audio gets in and out: the AudioTransport base and its optional abilities, the
factory, sound devices and WAV files, the websocket server (moshi's protocol) and Discord.
"""
