using NativeQuant.Cli;

return await NqCli.RunAsync(args);
